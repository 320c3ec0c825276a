import { useState } from "react";
import { useMutation, useQuery, useSubscription } from "urql";
import { graphql } from "../gql";
import type {
  BindMailboxInput, DiscoveryAttempt, MailProtocol, MailboxRowFragment, TransportSecurity,
} from "../gql/graphql";
import { Field, Problem, problemOf } from "./common";
import { formatFull } from "../format";

export const MailboxRow = graphql(`
  fragment MailboxRow on Mailbox {
    id address displayName protocol status lastSyncedAt lastError inWorkspace quarantinedCount
    incoming { host port security username }
    outgoing { host port security username }
    replySettings { subjectTemplate footer }
  }
`);

const MailboxesDoc = graphql(`
  query AdminMailboxes { mailboxes { ...MailboxRow } }
`);

const MailboxChangesDoc = graphql(`
  subscription MailboxChanges { mailboxChanges { ...MailboxRow } }
`);

const BindDoc = graphql(`
  mutation BindMailbox($input: BindMailboxInput!) {
    bindMailbox(input: $input) {
      mailbox { ...MailboxRow }
      needsAdvancedSettings
      attempts { source protocol host port security outcome }
      userErrors { field message code }
    }
  }
`);

const UpdateDoc = graphql(`
  mutation UpdateMailbox($input: UpdateMailboxInput!) {
    updateMailbox(input: $input) { mailbox { ...MailboxRow } userErrors { field message code } }
  }
`);

const DeleteDoc = graphql(`
  mutation DeleteMailbox($id: UUID!) { deleteMailbox(id: $id) { deletedId userErrors { message code } } }
`);

const SyncDoc = graphql(`
  mutation SyncMailbox($id: UUID!) {
    syncMailbox(id: $id) { fetched conversationsOpened mailbox { ...MailboxRow } userErrors { message code } }
  }
`);

const ReplySettingsDoc = graphql(`
  mutation SetReplySettings($input: ReplySettingsInput!) {
    setReplySettings(input: $input) { mailbox { ...MailboxRow } userErrors { field message code } }
  }
`);

const SECURITIES: TransportSecurity[] = ["TLS", "STARTTLS", "NONE"];

export function Mailboxes() {
  const [{ data, error }, refetch] = useQuery({ query: MailboxesDoc, requestPolicy: "cache-and-network" });
  // Health live: each pushed mailbox replaces its row.
  const [live] = useSubscription({ query: MailboxChangesDoc }, (prev: Record<string, MailboxRowFragment> | undefined, event) => ({
    ...(prev ?? {}), [event.mailboxChanges.id]: event.mailboxChanges,
  }));
  const reload = () => refetch({ requestPolicy: "network-only" });
  const rows = (data?.mailboxes ?? []).map((m) => live.data?.[m.id] ?? m);
  return (
    <section aria-labelledby="mailboxes-title">
      <h2 id="mailboxes-title">Mailboxes</h2>
      <Problem text={error?.message ?? null} />
      <table className="grid">
        <caption className="sr-only">Bound mailboxes</caption>
        <thead><tr><th>Address</th><th>Status</th><th>Incoming</th><th>In workspace</th><th>Quarantined</th><th>Actions</th></tr></thead>
        <tbody>
          {rows.map((m) => <MailboxLine key={m.id} m={m} onChanged={reload} />)}
          {rows.length === 0 && <tr><td colSpan={6}>No mailbox yet.</td></tr>}
        </tbody>
      </table>
      <BindForm onBound={reload} />
    </section>
  );
}

function MailboxLine({ m, onChanged }: { m: MailboxRowFragment; onChanged: () => void }) {
  const [, update] = useMutation(UpdateDoc);
  const [, remove] = useMutation(DeleteDoc);
  const [sync, doSync] = useMutation(SyncDoc);
  const [problem, setProblem] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  return (
    <>
      <tr>
        <td><strong>{m.address}</strong><br /><small>{m.displayName}</small></td>
        <td>
          <span className={`badge mailbox-${m.status}`} data-testid="mailbox-status">{m.status.toLowerCase()}</span>
          {m.lastError && <><br /><small className="error">{m.lastError}</small></>}
          {m.lastSyncedAt && <><br /><small>synced {formatFull(m.lastSyncedAt)}</small></>}
        </td>
        <td>{m.protocol} {m.incoming.host}:{m.incoming.port} {m.incoming.security}</td>
        <td>{m.inWorkspace ? "yes" : <span title="No enabled routing rule covers this mailbox">no: add a rule</span>}</td>
        <td>{m.quarantinedCount}</td>
        <td className="actions">
          <button type="button" disabled={sync.fetching} onClick={async () => {
            const r = await doSync({ id: m.id });
            setProblem(problemOf(r.error, r.data?.syncMailbox.userErrors));
            if (r.data && !r.error) setNote(`${r.data.syncMailbox.fetched} fetched, ${r.data.syncMailbox.conversationsOpened} new conversations`);
            onChanged();
          }}>Sync now</button>
          <button type="button" onClick={async () => {
            const r = await update({ input: { id: m.id, enabled: m.status === "DISABLED" } });
            setProblem(problemOf(r.error, r.data?.updateMailbox.userErrors));
            onChanged();
          }}>{m.status === "DISABLED" ? "Enable" : "Disable"}</button>
          <button type="button" aria-expanded={editing} onClick={() => setEditing(!editing)}>Reply settings</button>
          <button type="button" className="danger" onClick={async () => {
            if (!window.confirm(`Delete ${m.address}?`)) return;
            const r = await remove({ id: m.id });
            setProblem(problemOf(r.error, r.data?.deleteMailbox.userErrors));
            onChanged();
          }}>Delete</button>
          {note && <small role="status">{note}</small>}
          <Problem text={problem} />
        </td>
      </tr>
      {editing && (
        <tr><td colSpan={6}><ReplySettingsForm m={m} onDone={() => { setEditing(false); onChanged(); }} /></td></tr>
      )}
    </>
  );
}

function ReplySettingsForm({ m, onDone }: { m: MailboxRowFragment; onDone: () => void }) {
  const [subjectTemplate, setSubject] = useState(m.replySettings.subjectTemplate);
  const [footer, setFooter] = useState(m.replySettings.footer);
  const [, save] = useMutation(ReplySettingsDoc);
  const [problem, setProblem] = useState<string | null>(null);
  const preview = subjectTemplate
    .replaceAll("{subject}", "Broken invoice")
    .replaceAll("{mailbox}", m.displayName || m.address)
    .replaceAll("{conversation_ref}", "1a2b3c4d");
  return (
    <form className="stack" aria-label={`Reply settings of ${m.address}`} onSubmit={async (e) => {
      e.preventDefault();
      const r = await save({ input: { mailboxId: m.id, subjectTemplate, footer } });
      const p = problemOf(r.error, r.data?.setReplySettings.userErrors);
      setProblem(p);
      if (!p) onDone();
    }}>
      <Field label="Subject template" hint="Placeholders: {subject} {mailbox} {conversation_ref}">
        <input value={subjectTemplate} onChange={(e) => setSubject(e.target.value)} />
      </Field>
      <Field label="Footer"><textarea rows={3} value={footer} onChange={(e) => setFooter(e.target.value)} /></Field>
      <div className="preview" aria-label="Preview">
        <p><strong>Subject:</strong> {preview}</p>
        <pre>{"Thanks, we are on it.\n\n" + footer}</pre>
      </div>
      <Problem text={problem} />
      <button type="submit">Save reply settings</button>
    </form>
  );
}

interface Server { host: string; port: string; security: TransportSecurity; username: string }

function fromAttempts(address: string, attempts: readonly DiscoveryAttempt[]): { protocol: MailProtocol; incoming: Server; outgoing: Server } {
  const domain = address.split("@")[1] ?? "";
  const best = attempts.find((a) => a.outcome === "auth-failed") ?? attempts[0];
  return {
    protocol: best?.protocol ?? "IMAP",
    incoming: {
      host: best?.host ?? `imap.${domain}`,
      port: String(best?.port ?? 993),
      security: best?.security ?? "TLS",
      username: address,
    },
    outgoing: { host: `smtp.${domain}`, port: "587", security: "STARTTLS", username: address },
  };
}

function BindForm({ onBound }: { onBound: () => void }) {
  const [address, setAddress] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [advanced, setAdvanced] = useState<ReturnType<typeof fromAttempts> | null>(null);
  const [attempts, setAttempts] = useState<readonly DiscoveryAttempt[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [state, bind] = useMutation(BindDoc);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setDone(null);
    const input: BindMailboxInput = { address, password, displayName: displayName || null };
    if (advanced) {
      const server = (s: Server) => ({ host: s.host, port: Number(s.port), security: s.security, username: s.username || null });
      input.protocol = advanced.protocol;
      input.incoming = server(advanced.incoming);
      input.outgoing = advanced.outgoing.host ? server(advanced.outgoing) : null;
    }
    const r = await bind({ input });
    const payload = r.data?.bindMailbox;
    setAttempts(payload?.attempts ?? []);
    if (payload?.needsAdvancedSettings) {
      setProblem("No working settings were found for this address: enter the server settings below.");
      if (!advanced) setAdvanced(fromAttempts(address, payload.attempts));
      return;
    }
    const p = problemOf(r.error, payload?.userErrors);
    setProblem(p);
    if (!p && payload?.mailbox) {
      setDone(`Bound ${payload.mailbox.address}.`);
      setAddress("");
      setPassword("");
      setDisplayName("");
      setAdvanced(null);
      setAttempts([]);
      onBound();
    }
  }

  const setIn = (patch: Partial<Server>) => advanced && setAdvanced({ ...advanced, incoming: { ...advanced.incoming, ...patch } });
  const setOut = (patch: Partial<Server>) => advanced && setAdvanced({ ...advanced, outgoing: { ...advanced.outgoing, ...patch } });

  return (
    <form className="card stack" onSubmit={submit} aria-labelledby="bind-title">
      <h3 id="bind-title">Bind a mailbox</h3>
      <p><small>Address and password are usually enough: the server settings are discovered and checked by logging in.</small></p>
      <div className="row-fields">
        <Field label="Address"><input type="email" required value={address} onChange={(e) => setAddress(e.target.value)} autoComplete="off" /></Field>
        <Field label="Password"><input type="password" required value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" /></Field>
        <Field label="Display name"><input value={displayName} onChange={(e) => setDisplayName(e.target.value)} /></Field>
      </div>
      {attempts.length > 0 && (
        <table className="grid" aria-label="Discovery attempts">
          <thead><tr><th>Source</th><th>Protocol</th><th>Server</th><th>Security</th><th>Outcome</th></tr></thead>
          <tbody>
            {attempts.map((a, i) => (
              <tr key={i}><td>{a.source}</td><td>{a.protocol}</td><td>{a.host}:{a.port}</td><td>{a.security}</td><td>{a.outcome}</td></tr>
            ))}
          </tbody>
        </table>
      )}
      {advanced && (
        <fieldset className="advanced">
          <legend>Advanced settings</legend>
          <Field label="Protocol">
            <select value={advanced.protocol} onChange={(e) => setAdvanced({ ...advanced, protocol: e.target.value as MailProtocol })}>
              <option value="IMAP">IMAP</option><option value="POP3">POP3</option>
            </select>
          </Field>
          <ServerFields legend="Incoming" s={advanced.incoming} set={setIn} />
          <ServerFields legend="Outgoing (SMTP)" s={advanced.outgoing} set={setOut} />
        </fieldset>
      )}
      <Problem text={problem} />
      {done && <p role="status">{done}</p>}
      <button type="submit" disabled={state.fetching}>{state.fetching ? "Checking…" : "Bind mailbox"}</button>
    </form>
  );
}

function ServerFields({ legend, s, set }: { legend: string; s: Server; set: (p: Partial<Server>) => void }) {
  return (
    <fieldset className="row-fields">
      <legend>{legend}</legend>
      <Field label={`${legend} host`}><input value={s.host} onChange={(e) => set({ host: e.target.value })} /></Field>
      <Field label={`${legend} port`}><input type="number" value={s.port} onChange={(e) => set({ port: e.target.value })} /></Field>
      <Field label={`${legend} security`}>
        <select value={s.security} onChange={(e) => set({ security: e.target.value as TransportSecurity })}>
          {SECURITIES.map((x) => <option key={x} value={x}>{x}</option>)}
        </select>
      </Field>
      <Field label={`${legend} username`}><input value={s.username} onChange={(e) => set({ username: e.target.value })} /></Field>
    </fieldset>
  );
}
