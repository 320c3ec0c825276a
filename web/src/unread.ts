import { useCallback, useState } from "react";

// Read state is the browser's own (the API has none): per user, each conversation's lastMessageAt
// when they last opened it. A conversation is unread when its lastMessageAt is newer. Stored in
// localStorage, the most recent MAX_READ entries kept.
const MAX_READ = 1000;

type ReadMap = Record<string, string>;

/** The storage key of a user: their agent id, else a hash of their token (never the token). */
export function readKey(agentId: string | null, token: string): string {
  if (agentId) return `mailroom.read.agent.${agentId}`;
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < token.length; i++) h = Math.imul(h ^ token.charCodeAt(i), 0x01000193);
  return `mailroom.read.token.${(h >>> 0).toString(16)}`;
}

function load(key: string): ReadMap {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(key) ?? "{}");
    return value && typeof value === "object" ? (value as ReadMap) : {};
  } catch {
    return {};
  }
}

export function useReadState(key: string) {
  const [read, setRead] = useState<ReadMap>(() => load(key));

  const isUnread = useCallback(
    (id: string, lastMessageAt: string) => !(id in read) || Date.parse(lastMessageAt) > Date.parse(read[id]),
    [read],
  );

  const markRead = useCallback(
    (id: string, lastMessageAt: string) => {
      setRead((old) => {
        if (id in old && Date.parse(old[id]) >= Date.parse(lastMessageAt)) return old;
        const entries = Object.entries({ ...load(key), ...old, [id]: lastMessageAt });
        entries.sort((a, b) => Date.parse(b[1]) - Date.parse(a[1]));
        const next = Object.fromEntries(entries.slice(0, MAX_READ));
        try {
          localStorage.setItem(key, JSON.stringify(next));
        } catch {
          // storage full or denied: read state lasts for this page only
        }
        return next;
      });
    },
    [key],
  );

  return { isUnread, markRead };
}
