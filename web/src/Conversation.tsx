import { useEffect, useRef, useState } from "react";
import { useMutation, useQuery } from "urql";
import { graphql } from "./gql";
import type { ConversationFullFragment } from "./gql/graphql";
import type { Viewer } from "./App";
import { openAuthenticated } from "./client";
import { formatFull, formatSize } from "./format";

export const ConversationFull = graphql(`
  fragment ConversationFull on Conversation {
    id
    subject
    customerEmail
    status
    createdAt
    lastMessageAt
    mailbox { id address displayName replySettings { subjectTemplate footer } }
    assignee { id name }
    groups { id name members { id name status active } }
    rule { id name }
    contact { name email account { name } }
    messages {
      id direction from fromName to cc subject date text html deliveryStatus
      attachments { filename contentType size url }
    }
    assignments { agent { id name } strategy reason at }
  }
`);

const ConversationDoc = graphql(`
  query Conversation($id: UUID!) {
    conversation(id: $id) { ...ConversationFull }
  }
`);

const SidebarDoc = graphql(`
  query ConversationSidebar($id: UUID!) {
    conversation(id: $id) {
      id
      sidebar { sourceId title error records { recordType externalId title fields url } }
    }
  }
`);

const ReplyDoc = graphql(`
  mutation Reply($input: ReplyInput!) {
    replyToConversation(input: $input) {
      message { id deliveryStatus }
      userErrors { field message code }
    }
  }
`);

const AssignDoc = graphql(`
  mutation Assign($conversationId: UUID!, $agentId: UUID!) {
    assignConversation(conversationId: $conversationId, agentId: $agentId) {
      conversation { ...ConversationFull }
      userErrors { message code }
    }
  }
`);

const CloseDoc = graphql(`
  mutation Close($id: UUID!) {
    closeConversation(id: $id) { conversation { ...ConversationFull } userErrors { message code } }
  }
`);

const ReopenDoc = graphql(`
  mutation Reopen($id: UUID!) {
    reopenConversation(id: $id) { conversation { ...ConversationFull } userErrors { message code } }
  }
`);

const REF = /\[#([A-HJ-NP-Z2-9]{8})\]/;
const PREFIXES = /^\s*((re|fw|fwd|aw|wg|sv|vs|antw)\s*:\s*)+/i;

/** The mailbox's default reply subject as the server renders it (domain/replies.py): the
 * reference token is known once a subject of the thread carries it; the server adds it anyway. */
function renderSubject(template: string, c: ConversationFullFragment): string {
  const ref = c.messages.map((m) => REF.exec(m.subject)?.[0]).find(Boolean) ?? "";
  const bare = c.subject.replace(/\[#[A-HJ-NP-Z2-9]{8}\]/g, "").replace(PREFIXES, "").trim();
  let filled = template
    .replaceAll("{subject}", bare)
    .replaceAll("{mailbox}", c.mailbox.displayName || c.mailbox.address)
    .replaceAll("{conversation_ref}", ref);
  if (ref && !filled.includes(ref)) filled = `${filled.trimEnd()} ${ref}`;
  return filled.replace(/\s+/g, " ").trim();
}

export function ConversationView({ id, me, token, changeSeq, onChanged }: {
  id: string; me: Viewer; token: string; changeSeq: number; onChanged: () => void;
}) {
  const [{ data, error, fetching }, refetch] = useQuery({ query: ConversationDoc, variables: { id }, requestPolicy: "cache-and-network" });
  const [sidebar] = useQuery({ query: SidebarDoc, variables: { id } });
  const [, close] = useMutation(CloseDoc);
  const [, reopen] = useMutation(ReopenDoc);
  const [actionError, setActionError] = useState<string | null>(null);
  const replyRef = useRef<HTMLTextAreaElement>(null);

  // A pushed change for this conversation: read it again (event-driven, not polled).
  useEffect(() => {
    if (changeSeq > 0) refetch({ requestPolicy: "network-only" });
  }, [changeSeq, refetch]);

  const conversation = data?.conversation ?? null;

  useEffect(() => {
    async function onKey(event: KeyboardEvent) {
      const el = event.target as HTMLElement | null;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT")) return;
      if (event.key === "r") {
        event.preventDefault();
        replyRef.current?.focus();
      } else if (event.key === "c" && conversation && conversation.status !== "CLOSED") {
        event.preventDefault();
        const result = await close({ id: conversation.id });
        setActionError(result.error?.message ?? result.data?.closeConversation.userErrors[0]?.message ?? null);
        onChanged();
      }
    }
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [conversation, close, onChanged]);

  if (error && !conversation) return <section className="conversation" aria-label="Conversation"><p role="alert" className="error">{error.message}</p></section>;
  if (!conversation) {
    return (
      <section className="conversation" aria-label="Conversation">
        <p aria-live="polite">{fetching ? "Loading…" : "This conversation is not visible to you."}</p>
      </section>
    );
  }
  const c = conversation;
  const members = new Map<string, string>();
  for (const g of c.groups) for (const m of g.members) if (m.active) members.set(m.id, m.name);
  const canAct = me.role !== "AUDITOR";

  return (
    <>
      <section className="conversation" aria-labelledby="conversation-title">
        <a href="#/inbox" className="back">← Inbox</a>
        <header className="conversation-head">
          <h2 id="conversation-title">{c.subject || "(no subject)"}</h2>
          <p>
            <span className={`badge status-${c.status}`} data-testid="conversation-status">{c.status.toLowerCase()}</span>{" "}
            {c.customerEmail} → {c.mailbox.address} · {c.assignee ? `assigned to ${c.assignee.name}` : "unassigned"}
            {c.groups.length > 0 && ` · ${c.groups.map((g) => g.name).join(", ")}`}
          </p>
          {canAct && (
            <div className="actions" role="group" aria-label="Conversation actions">
              {members.size > 0 && (
                <AssignControl conversationId={c.id} current={c.assignee?.id ?? null} members={members}
                  onError={setActionError} onDone={onChanged} />
              )}
              {c.status === "CLOSED" ? (
                <button type="button" onClick={async () => {
                  const r = await reopen({ id: c.id });
                  setActionError(r.error?.message ?? r.data?.reopenConversation.userErrors[0]?.message ?? null);
                  onChanged();
                }}>Reopen</button>
              ) : (
                <button type="button" aria-keyshortcuts="c" onClick={async () => {
                  const r = await close({ id: c.id });
                  setActionError(r.error?.message ?? r.data?.closeConversation.userErrors[0]?.message ?? null);
                  onChanged();
                }}>Close</button>
              )}
            </div>
          )}
          {actionError && <p role="alert" className="error">{actionError}</p>}
        </header>
        <ol className="thread" aria-label="Messages">
          {c.messages.map((m) => (
            <li key={m.id} className={`message ${m.direction.toLowerCase()}`} aria-label={`${m.direction === "INBOUND" ? "From" : "Reply from"} ${m.fromName || m.from}`}>
              <header>
                <strong>{m.fromName ? `${m.fromName} <${m.from}>` : m.from}</strong>
                <span className="to">to {m.to.join(", ")}{m.cc.length ? `, cc ${m.cc.join(", ")}` : ""}</span>
                <time dateTime={m.date}>{formatFull(m.date)}</time>
                {m.direction === "OUTBOUND" && (
                  <span className={`badge delivery-${m.deliveryStatus}`} data-testid="delivery-status" aria-live="polite">
                    {m.deliveryStatus}
                  </span>
                )}
              </header>
              {m.subject !== c.subject && <p className="msg-subject">{m.subject}</p>}
              {m.html ? (
                <iframe
                  className="mail-html"
                  title={`Message from ${m.fromName || m.from}`}
                  sandbox="allow-popups allow-popups-to-escape-sandbox"
                  referrerPolicy="no-referrer"
                  srcDoc={`<!doctype html><meta charset="utf-8"><base target="_blank">${m.html}`}
                />
              ) : (
                <pre className="mail-text">{m.text}</pre>
              )}
              {m.attachments.length > 0 && (
                <ul className="attachments" aria-label="Attachments">
                  {m.attachments.map((a) => (
                    <li key={a.url}>
                      <button type="button" className="link" onClick={() => void openAuthenticated(a.url, token, a.filename)}>
                        {a.filename || "attachment"}
                      </button>{" "}
                      <small>{a.contentType}, {formatSize(a.size)}</small>
                    </li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ol>
        {canAct && <ReplyBox key={c.id} conversation={c} textareaRef={replyRef} onSent={() => refetch({ requestPolicy: "network-only" })} />}
      </section>
      <aside className="sidebar" aria-label="Customer details">
        <h3>Customer</h3>
        <p>{c.contact?.name ? `${c.contact.name} <${c.customerEmail}>` : c.customerEmail}
          {c.contact?.account && <><br /><small>Account: {c.contact.account.name}</small></>}</p>
        {sidebar.data?.conversation?.sidebar.map((s) => (
          <section key={s.sourceId} aria-label={s.title}>
            <h3>{s.title}</h3>
            {s.error && <p className="error">{s.error}</p>}
            {s.records.length === 0 && !s.error && <p><small>Nothing found.</small></p>}
            <ul>
              {s.records.map((r) => (
                <li key={r.externalId}>
                  {r.url ? <a href={r.url} target="_blank" rel="noopener noreferrer">{r.title}</a> : r.title}
                  <dl>
                    {Object.entries((r.fields ?? {}) as Record<string, unknown>).map(([k, v]) => (
                      <div key={k}><dt>{k}</dt><dd>{String(v)}</dd></div>
                    ))}
                  </dl>
                </li>
              ))}
            </ul>
          </section>
        ))}
        <h3>Assignment history</h3>
        <ol className="history">
          {c.assignments.map((a, i) => (
            <li key={i}>
              <time dateTime={a.at}>{formatFull(a.at)}</time>: {a.agent ? a.agent.name : "queued"}
              <br /><small>{a.reason}</small>
            </li>
          ))}
        </ol>
        {c.rule && <p><small>Routed by rule “{c.rule.name}”</small></p>}
      </aside>
    </>
  );
}

function AssignControl({ conversationId, current, members, onError, onDone }: {
  conversationId: string; current: string | null; members: Map<string, string>;
  onError: (e: string | null) => void; onDone: () => void;
}) {
  const [, assign] = useMutation(AssignDoc);
  return (
    <span>
      <label htmlFor="assign-to">Assign to</label>{" "}
      <select id="assign-to" value={current ?? ""} onChange={async (e) => {
        if (!e.target.value) return;
        const r = await assign({ conversationId, agentId: e.target.value });
        onError(r.error?.message ?? r.data?.assignConversation.userErrors[0]?.message ?? null);
        onDone();
      }}>
        <option value="">(choose)</option>
        {[...members].map(([mid, name]) => <option key={mid} value={mid}>{name}</option>)}
      </select>
    </span>
  );
}

function ReplyBox({ conversation, textareaRef, onSent }: {
  conversation: ConversationFullFragment; textareaRef: React.RefObject<HTMLTextAreaElement>; onSent: () => void;
}) {
  const settings = conversation.mailbox.replySettings;
  const defaultSubject = renderSubject(settings.subjectTemplate, conversation);
  const [edited, setEdited] = useState<string | null>(null);
  const subject = edited ?? defaultSubject; // follows the default (e.g. once the reference is known) until edited
  const [body, setBody] = useState("");
  const [state, reply] = useMutation(ReplyDoc);
  const [message, setMessage] = useState<string | null>(null);

  async function send(event: React.FormEvent) {
    event.preventDefault();
    if (!body.trim()) return;
    const input = { conversationId: conversation.id, body, ...(edited !== null && edited !== defaultSubject ? { subject: edited } : {}) };
    const result = await reply({ input });
    const problem = result.error?.message ?? result.data?.replyToConversation.userErrors[0]?.message;
    if (problem) setMessage(problem);
    else {
      setMessage("Reply queued.");
      setBody("");
      onSent();
    }
  }

  return (
    <form className="reply" onSubmit={send} aria-labelledby="reply-title">
      <h3 id="reply-title">Reply</h3>
      <label htmlFor="reply-subject">Subject</label>
      <input id="reply-subject" value={subject} onChange={(e) => setEdited(e.target.value)} aria-describedby="reply-subject-hint" />
      <small id="reply-subject-hint">The conversation's reference token [#…] is always kept in the subject.</small>
      <label htmlFor="reply-body">Message</label>
      <textarea id="reply-body" ref={textareaRef} rows={6} value={body} aria-keyshortcuts="r"
        onChange={(e) => setBody(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void send(e);
          if (e.key === "Escape") (e.target as HTMLTextAreaElement).blur();
        }} />
      {settings.footer && (
        <div className="footer-preview" aria-label="Footer appended to the reply"><pre>{settings.footer}</pre></div>
      )}
      <div className="reply-actions">
        <button type="submit" disabled={state.fetching || !body.trim()}>Send reply</button>
        <small>Ctrl+Enter sends</small>
        {message && <span role="status">{message}</span>}
      </div>
    </form>
  );
}
