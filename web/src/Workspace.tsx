import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useClient, useSubscription } from "urql";
import { graphql } from "./gql";
import type { ConversationFilter, ConversationStatus, InboxRowFragment } from "./gql/graphql";
import type { Viewer } from "./App";
import { navigate } from "./route";
import { ConversationView } from "./Conversation";
import { formatTime } from "./format";
import { readKey, useReadState } from "./unread";

export const InboxRow = graphql(`
  fragment InboxRow on Conversation {
    id
    subject
    customerEmail
    status
    lastMessageAt
    assignee { id name }
    groups { id name }
    mailbox { id address }
  }
`);

const InboxDoc = graphql(`
  query Inbox($filter: ConversationFilter, $first: Int, $after: String) {
    conversations(filter: $filter, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { ...InboxRow } }
    }
  }
`);

const ChangesDoc = graphql(`
  subscription ConversationChanges($afterPosition: Int) {
    conversationChanges(afterPosition: $afterPosition) {
      position
      kind
      conversation { ...InboxRow messages { id deliveryStatus } }
    }
  }
`);

type Scope = "mine" | "groups" | "all" | `group:${string}`;
const STATUSES: ConversationStatus[] = ["UNROUTED", "QUEUED", "OPEN", "CLOSED"];
const PAGE = 50;

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return !!el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
}

export function Workspace({ me, token, openId }: { me: Viewer; token: string; openId: string | null }) {
  const client = useClient();
  const agentId = me.agent?.id ?? null;
  const [scope, setScope] = useState<Scope>(agentId ? "mine" : "all");
  const [status, setStatus] = useState<ConversationStatus | "">("");
  const [searchInput, setSearchInput] = useState("");
  const [text, setText] = useState("");
  const [rows, setRows] = useState<InboxRowFragment[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [total, setTotal] = useState<number | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [changeSeq, setChangeSeq] = useState(0);
  const [reloadSeq, setReloadSeq] = useState(0);
  const { isUnread, markRead } = useReadState(readKey(agentId, token));

  const filter = useMemo<ConversationFilter>(() => {
    const f: ConversationFilter = {};
    if (scope === "mine" && agentId) f.assigneeId = agentId;
    if (scope.startsWith("group:")) f.groupId = scope.slice(6);
    if (status) f.status = status;
    if (text) f.text = text;
    return f;
  }, [scope, status, text, agentId]);

  const matches = useCallback(
    (c: InboxRowFragment) =>
      (!filter.assigneeId || c.assignee?.id === filter.assigneeId) &&
      (!filter.groupId || c.groups.some((g) => g.id === filter.groupId)) &&
      (!filter.status || c.status === filter.status),
    [filter],
  );

  const load = useCallback(
    async (after: string | null) => {
      setLoading(true);
      const result = await client
        .query(InboxDoc, { filter, first: PAGE, after }, { requestPolicy: "network-only" })
        .toPromise();
      setLoading(false);
      if (result.error || !result.data) {
        setError(result.error?.message ?? "no data");
        return;
      }
      setError(null);
      const page = result.data.conversations;
      const nodes = page.edges.map((e) => e.node);
      setRows((old) => (after ? [...old, ...nodes.filter((n) => !old.some((o) => o.id === n.id))] : nodes));
      setCursor(page.pageInfo.endCursor ?? null);
      setHasMore(page.pageInfo.hasNextPage);
      setTotal(page.totalCount);
    },
    [client, filter],
  );

  useEffect(() => {
    void load(null);
  }, [load, reloadSeq]);

  const openIdRef = useRef(openId);
  const matchesRef = useRef(matches);
  const textRef = useRef(text);
  const rowsRef = useRef(rows);
  useEffect(() => {
    rowsRef.current = rows;
    openIdRef.current = openId;
    matchesRef.current = matches;
    textRef.current = text;
  });

  // Live: every change the viewer may see, merged into the list (no polling).
  const [sub] = useSubscription({ query: ChangesDoc, variables: { afterPosition: null } }, (_prev: unknown, event) => {
    const c = event.conversationChanges.conversation;
    const old = rowsRef.current;
    const rest = old.filter((r) => r.id !== c.id);
    const had = rest.length !== old.length;
    let next = old;
    if (!matchesRef.current(c)) {
      if (had) {
        next = rest;
        setTotal((t) => (t === null ? t : Math.max(0, t - 1)));
      }
    } else if (had || !textRef.current) { // a search result list takes only rows it already holds
      if (!had) setTotal((t) => (t === null ? t : t + 1));
      next = [c, ...rest].sort((a, b) => (a.lastMessageAt < b.lastMessageAt ? 1 : a.lastMessageAt > b.lastMessageAt ? -1 : 0));
    }
    rowsRef.current = next;
    setRows(next);
    if (c.id === openIdRef.current) setChangeSeq((n) => n + 1);
    return event;
  });

  // Opening a conversation reads it, and so does a message arriving while it is open.
  const openAt = rows.find((r) => r.id === openId)?.lastMessageAt;
  useEffect(() => {
    if (openId && openAt) markRead(openId, openAt);
  }, [openId, openAt, markRead]);

  // Keyboard: j/k next/previous conversation, r reply, c close (see ConversationView).
  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
      if (event.key !== "j" && event.key !== "k") return;
      const index = rows.findIndex((r) => r.id === openId);
      const next = event.key === "j" ? Math.min(rows.length - 1, index + 1) : Math.max(0, index - 1);
      if (rows[next]) {
        event.preventDefault();
        navigate(`/inbox/${rows[next].id}`);
        document.getElementById(`row-${rows[next].id}`)?.scrollIntoView({ block: "nearest" });
      }
    }
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [rows, openId]);

  const groups = me.agent?.groups ?? [];
  return (
    <div className={`workspace ${openId ? "has-open" : ""}`}>
      <section className="inbox" aria-label="Inbox">
        <div className="inbox-controls">
          <div role="group" aria-label="Which conversations">
            {agentId && <ScopeButton scope={scope} value="mine" set={setScope}>Mine</ScopeButton>}
            {agentId && <ScopeButton scope={scope} value="groups" set={setScope}>My groups</ScopeButton>}
            {me.role !== "AGENT" && <ScopeButton scope={scope} value="all" set={setScope}>All</ScopeButton>}
          </div>
          {agentId && groups.length > 1 && (scope === "groups" || scope.startsWith("group:")) && (
            <span>
              <label htmlFor="group-scope">Group</label>{" "}
              <select id="group-scope" value={scope} onChange={(e) => setScope(e.target.value as Scope)}>
                <option value="groups">All my groups</option>
                {groups.map((g) => <option key={g.id} value={`group:${g.id}`}>{g.name}</option>)}
              </select>
            </span>
          )}
          <span>
            <label htmlFor="status-filter">Status</label>{" "}
            <select id="status-filter" value={status} onChange={(e) => setStatus(e.target.value as ConversationStatus | "")}>
              <option value="">Any</option>
              {STATUSES.map((s) => <option key={s} value={s}>{s.toLowerCase()}</option>)}
            </select>
          </span>
          <form
            role="search"
            onSubmit={(e) => {
              e.preventDefault();
              setText(searchInput.trim());
            }}
          >
            <label htmlFor="search" className="sr-only">Search conversations</label>
            <input id="search" type="search" placeholder="Search subject, text, customer" value={searchInput}
              onChange={(e) => {
                setSearchInput(e.target.value);
                if (!e.target.value) setText("");
              }} />
            <button type="submit">Search</button>
          </form>
        </div>
        <p className="inbox-meta" aria-live="polite">
          {total === null ? "Loading…" : `${total} conversation${total === 1 ? "" : "s"}`}
          {sub.error ? " · live updates interrupted, retrying" : ""}
          {loading && total !== null ? " · loading…" : ""}
        </p>
        {error && <p role="alert" className="error">{error}</p>}
        <ul className="rows" aria-label="Conversations">
          {rows.map((r) => {
            const unread = r.id !== openId && isUnread(r.id, r.lastMessageAt);
            return (
              <li key={r.id} id={`row-${r.id}`} className={`row${r.id === openId ? " selected" : ""}${unread ? " unread" : ""}`}>
                <a href={`#/inbox/${r.id}`} aria-current={r.id === openId ? "true" : undefined} data-testid="conversation-row">
                  {unread && <span className="sr-only">Unread: </span>}
                  <span className="row-subject">{r.subject || "(no subject)"}</span>
                  <span className="row-line">
                    <span className="row-customer">{r.customerEmail}</span>
                    <time dateTime={r.lastMessageAt}>{formatTime(r.lastMessageAt)}</time>
                  </span>
                  <span className="row-line">
                    <span className={`badge status-${r.status}`}>{r.status.toLowerCase()}</span>
                    <span className="row-assignee">{r.assignee ? r.assignee.name : "unassigned"}</span>
                  </span>
                </a>
              </li>
            );
          })}
        </ul>
        {hasMore && (
          <button type="button" className="more" disabled={loading} onClick={() => void load(cursor)}>Load more</button>
        )}
      </section>
      {openId ? (
        <ConversationView key={openId} id={openId} me={me} token={token} changeSeq={changeSeq}
          onChanged={() => setReloadSeq((n) => n + 1)} />
      ) : (
        <section className="conversation empty" aria-label="Conversation">
          <p>Select a conversation. Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous, <kbd>r</kbd> reply, <kbd>c</kbd> close.</p>
        </section>
      )}
    </div>
  );
}

function ScopeButton({ scope, value, set, children }: {
  scope: Scope; value: Scope; set: (s: Scope) => void; children: React.ReactNode;
}) {
  const active = scope === value || (value === "groups" && scope.startsWith("group:"));
  return <button type="button" aria-pressed={active} onClick={() => set(value)}>{children}</button>;
}
