import { useState } from "react";
import { useClient, useMutation, useQuery } from "urql";
import { graphql } from "../gql";
import type { MatchKey, Role, SidebarSourceKind } from "../gql/graphql";
import { Field, Problem, problemOf } from "./common";
import { formatFull, formatSize } from "../format";
import { openAuthenticated } from "../client";

const TokensDoc = graphql(`
  query AdminTokens {
    apiTokens { id name role agent { id name } createdAt expiresAt lastUsedAt revokedAt }
    agents { id name active }
  }
`);

const CreateTokenDoc = graphql(`
  mutation CreateToken($input: CreateApiTokenInput!) {
    createApiToken(input: $input) { token apiToken { id } userErrors { field message code } }
  }
`);

const RevokeTokenDoc = graphql(`
  mutation RevokeToken($id: UUID!) { revokeApiToken(id: $id) { deletedId userErrors { message code } } }
`);

export function Tokens() {
  const [{ data, error }, refetch] = useQuery({ query: TokensDoc, requestPolicy: "cache-and-network" });
  const reload = () => refetch({ requestPolicy: "network-only" });
  const [, create] = useMutation(CreateTokenDoc);
  const [, revoke] = useMutation(RevokeTokenDoc);
  const [problem, setProblem] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("AGENT");
  const [agentId, setAgentId] = useState("");
  const [expires, setExpires] = useState("");
  return (
    <section aria-labelledby="tokens-title">
      <h2 id="tokens-title">API tokens</h2>
      <Problem text={error?.message ?? problem} />
      {created && (
        <div className="card created" role="status">
          <p><strong>The new token, shown only now:</strong> copy it, it cannot be read again.</p>
          <code className="token-value" data-testid="new-token">{created}</code>{" "}
          <button type="button" onClick={() => void navigator.clipboard?.writeText(created)}>Copy</button>{" "}
          <button type="button" onClick={() => setCreated(null)}>Done</button>
        </div>
      )}
      <table className="grid">
        <thead><tr><th>Name</th><th>Role</th><th>Agent</th><th>Created</th><th>Last used</th><th>Expires</th><th></th></tr></thead>
        <tbody>
          {data?.apiTokens.map((t) => (
            <tr key={t.id} className={t.revokedAt ? "inactive" : ""}>
              <td>{t.name}</td><td>{t.role}</td><td>{t.agent?.name ?? ""}</td>
              <td>{formatFull(t.createdAt)}</td><td>{t.lastUsedAt ? formatFull(t.lastUsedAt) : "never"}</td>
              <td>{t.expiresAt ? formatFull(t.expiresAt) : "never"}</td>
              <td>{t.revokedAt ? `revoked ${formatFull(t.revokedAt)}` : (
                <button type="button" className="danger" onClick={async () => {
                  if (!window.confirm(`Revoke token ${t.name}?`)) return;
                  const r = await revoke({ id: t.id });
                  setProblem(problemOf(r.error, r.data?.revokeApiToken.userErrors));
                  reload();
                }}>Revoke</button>
              )}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="card row-fields" aria-labelledby="new-token-title" onSubmit={async (e) => {
        e.preventDefault();
        const r = await create({ input: {
          name, role, agentId: role === "AGENT" ? agentId || null : null,
          expiresAt: expires ? new Date(expires).toISOString() : null,
        } });
        const p = problemOf(r.error, r.data?.createApiToken.userErrors);
        setProblem(p);
        if (!p && r.data?.createApiToken.token) { setCreated(r.data.createApiToken.token); setName(""); reload(); }
      }}>
        <h3 id="new-token-title">New token</h3>
        <Field label="Token name"><input required value={name} onChange={(e) => setName(e.target.value)} /></Field>
        <Field label="Role">
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="AGENT">agent</option><option value="ADMIN">admin</option><option value="AUDITOR">auditor</option>
          </select>
        </Field>
        {role === "AGENT" && (
          <Field label="Agent">
            <select required value={agentId} onChange={(e) => setAgentId(e.target.value)}>
              <option value="">(choose)</option>
              {data?.agents.filter((a) => a.active).map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
            </select>
          </Field>
        )}
        <Field label="Expires (optional)"><input type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} /></Field>
        <button type="submit">Create token</button>
      </form>
    </section>
  );
}

const QuarantineDoc = graphql(`
  query AdminQuarantine { quarantine { id mailbox { id address } receivedAt reason size rawUrl } }
`);

export function Quarantine({ token }: { token: string }) {
  const [{ data, error }] = useQuery({ query: QuarantineDoc, requestPolicy: "cache-and-network" });
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <section aria-labelledby="quarantine-title">
      <h2 id="quarantine-title">Quarantine</h2>
      <p><small>Messages taken in but not turned into conversations because they could not be parsed.</small></p>
      <Problem text={error?.message ?? problem} />
      <table className="grid">
        <thead><tr><th>Received</th><th>Mailbox</th><th>Reason</th><th>Size</th><th></th></tr></thead>
        <tbody>
          {data?.quarantine.map((q) => (
            <tr key={q.id}>
              <td>{formatFull(q.receivedAt)}</td><td>{q.mailbox.address}</td><td>{q.reason}</td><td>{formatSize(q.size)}</td>
              <td><button type="button" onClick={() => openAuthenticated(q.rawUrl, token, `${q.id}.eml`).catch((e: Error) => setProblem(e.message))}>
                Download raw</button></td>
            </tr>
          ))}
          {data?.quarantine.length === 0 && <tr><td colSpan={5}>Nothing quarantined.</td></tr>}
        </tbody>
      </table>
    </section>
  );
}

const SourcesDoc = graphql(`
  query AdminSidebarSources {
    sidebarSources { id title recordType kind urlTemplate matchBy fields { key label } position enabled }
  }
`);

const CreateSourceDoc = graphql(`
  mutation CreateSidebarSource($input: SidebarSourceInput!) {
    createSidebarSource(input: $input) { source { id } userErrors { field message code } }
  }
`);

const DeleteSourceDoc = graphql(`
  mutation DeleteSidebarSource($id: UUID!) { deleteSidebarSource(id: $id) { deletedId userErrors { message code } } }
`);

export function SidebarSources() {
  const [{ data, error }, refetch] = useQuery({ query: SourcesDoc, requestPolicy: "cache-and-network" });
  const reload = () => refetch({ requestPolicy: "network-only" });
  const [, create] = useMutation(CreateSourceDoc);
  const [, remove] = useMutation(DeleteSourceDoc);
  const [problem, setProblem] = useState<string | null>(null);
  const [title, setTitle] = useState("");
  const [recordType, setRecordType] = useState("");
  const [kind, setKind] = useState<SidebarSourceKind>("HTTP");
  const [urlTemplate, setUrl] = useState("");
  const [matchBy, setMatchBy] = useState<MatchKey>("CUSTOMER_EMAIL");
  const [fields, setFields] = useState("status: Status");
  const [position, setPosition] = useState("0");
  return (
    <section aria-labelledby="sources-title">
      <h2 id="sources-title">Sidebar sources</h2>
      <Problem text={error?.message ?? problem} />
      <table className="grid">
        <thead><tr><th>Position</th><th>Title</th><th>Kind</th><th>Match by</th><th>Fields</th><th></th></tr></thead>
        <tbody>
          {[...(data?.sidebarSources ?? [])].sort((a, b) => a.position - b.position).map((s) => (
            <tr key={s.id} className={s.enabled ? "" : "inactive"}>
              <td>{s.position}</td>
              <td><strong>{s.title}</strong> <small>({s.recordType})</small>{s.urlTemplate && <><br /><small>{s.urlTemplate}</small></>}</td>
              <td>{s.kind}</td><td>{s.matchBy}</td><td>{s.fields.map((f) => f.label).join(", ")}</td>
              <td><button type="button" className="danger" onClick={async () => {
                if (!window.confirm(`Delete source ${s.title}?`)) return;
                const r = await remove({ id: s.id });
                setProblem(problemOf(r.error, r.data?.deleteSidebarSource.userErrors));
                reload();
              }}>Delete</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="card stack" aria-labelledby="new-source" onSubmit={async (e) => {
        e.preventDefault();
        const parsed = fields.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
          const [key, ...rest] = l.split(":");
          return { key: key.trim(), label: (rest.join(":") || key).trim() };
        });
        const r = await create({ input: {
          title, recordType, kind, matchBy, fields: parsed, position: Number(position) || 0,
          urlTemplate: kind === "HTTP" ? urlTemplate : null,
        } });
        const p = problemOf(r.error, r.data?.createSidebarSource.userErrors);
        setProblem(p);
        if (!p) { setTitle(""); setRecordType(""); setUrl(""); reload(); }
      }}>
        <h3 id="new-source">New source</h3>
        <div className="row-fields">
          <Field label="Title"><input required value={title} onChange={(e) => setTitle(e.target.value)} /></Field>
          <Field label="Record type"><input required value={recordType} onChange={(e) => setRecordType(e.target.value)} /></Field>
          <Field label="Kind">
            <select value={kind} onChange={(e) => setKind(e.target.value as SidebarSourceKind)}>
              <option value="HTTP">HTTP (read live)</option><option value="RECORDS">Records (pushed)</option>
            </select>
          </Field>
          <Field label="Match by">
            <select value={matchBy} onChange={(e) => setMatchBy(e.target.value as MatchKey)}>
              {(["CUSTOMER_EMAIL", "EMAIL_DOMAIN", "CONTACT", "ACCOUNT"] as MatchKey[]).map((m) => <option key={m} value={m}>{m.toLowerCase().replace("_", " ")}</option>)}
            </select>
          </Field>
          <Field label="Position"><input type="number" className="narrow" value={position} onChange={(e) => setPosition(e.target.value)} /></Field>
        </div>
        {kind === "HTTP" && (
          <Field label="URL template" hint="e.g. https://erp.example/api/orders?email={customer_email}">
            <input value={urlTemplate} onChange={(e) => setUrl(e.target.value)} />
          </Field>
        )}
        <Field label="Fields" hint="One per line: key: Label"><textarea rows={3} value={fields} onChange={(e) => setFields(e.target.value)} /></Field>
        <button type="submit">Create source</button>
      </form>
    </section>
  );
}

const AccountsDoc = graphql(`
  query AdminAccounts { accounts { id name domains owner { id name } } agents { id name active } }
`);

const ContactDoc = graphql(`
  query AdminContact($email: String!) { contact(email: $email) { id email name account { id name } owner { id name } } }
`);

const UpsertAccountDoc = graphql(`
  mutation UpsertAccount($input: UpsertAccountInput!) {
    upsertAccount(input: $input) { account { id } userErrors { field message code } }
  }
`);

const UpsertContactDoc = graphql(`
  mutation UpsertContact($input: UpsertContactInput!) {
    upsertContact(input: $input) { contact { id } userErrors { field message code } }
  }
`);

export function Customers() {
  const client = useClient();
  const [{ data, error }, refetch] = useQuery({ query: AccountsDoc, requestPolicy: "cache-and-network" });
  const reload = () => refetch({ requestPolicy: "network-only" });
  const [, upsertAccount] = useMutation(UpsertAccountDoc);
  const [, upsertContact] = useMutation(UpsertContactDoc);
  const [problem, setProblem] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [accName, setAccName] = useState("");
  const [accDomains, setAccDomains] = useState("");
  const [accOwner, setAccOwner] = useState("");
  const [email, setEmail] = useState("");
  const [contactName, setContactName] = useState("");
  const [contactAccount, setContactAccount] = useState("");
  const [contactOwner, setContactOwner] = useState("");
  const agents = (data?.agents ?? []).filter((a) => a.active);
  return (
    <section aria-labelledby="customers-title">
      <h2 id="customers-title">Contacts and accounts</h2>
      <Problem text={error?.message ?? problem} />
      {note && <p role="status">{note}</p>}
      <h3>Accounts</h3>
      <table className="grid">
        <thead><tr><th>Name</th><th>Domains</th><th>Owner</th></tr></thead>
        <tbody>
          {data?.accounts.map((a) => <tr key={a.id}><td>{a.name}</td><td>{a.domains.join(", ")}</td><td>{a.owner?.name ?? ""}</td></tr>)}
        </tbody>
      </table>
      <form className="card row-fields" aria-labelledby="new-account" onSubmit={async (e) => {
        e.preventDefault();
        const r = await upsertAccount({ input: {
          name: accName, domains: accDomains.split(/[\s,]+/).filter(Boolean), ownerId: accOwner || null,
        } });
        const p = problemOf(r.error, r.data?.upsertAccount.userErrors);
        setProblem(p);
        if (!p) { setAccName(""); setAccDomains(""); reload(); }
      }}>
        <h3 id="new-account">New account</h3>
        <Field label="Account name"><input required value={accName} onChange={(e) => setAccName(e.target.value)} /></Field>
        <Field label="Domains" hint="comma separated"><input value={accDomains} onChange={(e) => setAccDomains(e.target.value)} /></Field>
        <Field label="Account owner">
          <select value={accOwner} onChange={(e) => setAccOwner(e.target.value)}>
            <option value="">(none)</option>{agents.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
          </select>
        </Field>
        <button type="submit">Save account</button>
      </form>
      <form className="card row-fields" aria-labelledby="contact-title" onSubmit={async (e) => {
        e.preventDefault();
        const r = await upsertContact({ input: {
          email, name: contactName || null, accountId: contactAccount || null, ownerId: contactOwner || null,
        } });
        const p = problemOf(r.error, r.data?.upsertContact.userErrors);
        setProblem(p);
        if (!p) setNote(`Contact ${email} saved.`);
      }}>
        <h3 id="contact-title">Contact</h3>
        <Field label="Contact email">
          <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} onBlur={async () => {
            if (!email) return;
            const r = await client.query(ContactDoc, { email }, { requestPolicy: "network-only" }).toPromise();
            const c = r.data?.contact;
            setContactName(c?.name ?? "");
            setContactAccount(c?.account?.id ?? "");
            setContactOwner(c?.owner?.id ?? "");
            setNote(c ? `Editing the existing contact ${c.email}.` : null);
          }} />
        </Field>
        <Field label="Contact name"><input value={contactName} onChange={(e) => setContactName(e.target.value)} /></Field>
        <Field label="Account">
          <select value={contactAccount} onChange={(e) => setContactAccount(e.target.value)}>
            <option value="">(none)</option>{data?.accounts.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
          </select>
        </Field>
        <Field label="Contact owner">
          <select value={contactOwner} onChange={(e) => setContactOwner(e.target.value)}>
            <option value="">(none)</option>{agents.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
          </select>
        </Field>
        <button type="submit">Save contact</button>
      </form>
    </section>
  );
}
