import { useCallback, useEffect, useMemo, useState } from "react";
import { Provider, useMutation, useQuery } from "urql";
import { graphql } from "./gql";
import { makeClients } from "./client";
import { clearToken, getToken, setToken } from "./session";
import { Workspace } from "./Workspace";
import { Admin } from "./Admin";
import { useRoute, navigate } from "./route";
import type { AgentStatus, MeQuery } from "./gql/graphql";

export const MeDoc = graphql(`
  query Me {
    me {
      role
      agent { id name email status groups { id name } }
    }
  }
`);

export type Viewer = MeQuery["me"];

const MyStatusDoc = graphql(`
  mutation SetMyStatus($agentId: UUID!, $status: AgentStatus!) {
    setAgentStatus(agentId: $agentId, status: $status) { agent { id status } userErrors { message } }
  }
`);

/** An agent's own status: only ONLINE agents receive new assignments. */
function MyStatus({ agentId, status }: { agentId: string; status: AgentStatus }) {
  const [value, setValue] = useState(status);
  const [, save] = useMutation(MyStatusDoc);
  return (
    <select aria-label="My status" value={value} onChange={async (e) => {
      const next = e.target.value as AgentStatus;
      const r = await save({ agentId, status: next });
      if (!r.error && !r.data?.setAgentStatus.userErrors.length) setValue(next);
    }}>
      <option value="ONLINE">online</option><option value="AWAY">away</option><option value="OFFLINE">offline</option>
    </select>
  );
}

export function App() {
  const [token, setTokenState] = useState<string | null>(() => getToken());
  const [notice, setNotice] = useState<string | null>(null);

  const signOut = useCallback((why?: string) => {
    clearToken();
    setTokenState(null);
    setNotice(why ?? null);
  }, []);

  const clients = useMemo(
    () => (token ? makeClients(token, () => signOut("Your token was not accepted (expired or revoked). Sign in again.")) : null),
    [token, signOut],
  );
  useEffect(() => () => void clients?.ws.dispose(), [clients]);

  if (!token || !clients) {
    return (
      <SignIn
        notice={notice}
        onToken={(t) => {
          setToken(t);
          setNotice(null);
          setTokenState(t);
        }}
      />
    );
  }
  return (
    <Provider value={clients.client}>
      <Shell token={token} onSignOut={() => signOut()} />
    </Provider>
  );
}

function SignIn({ notice, onToken }: { notice: string | null; onToken: (token: string) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    const token = value.trim();
    if (!token) return;
    setBusy(true);
    setError(null);
    try {
      const response = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: "{ me { role } }" }),
      });
      if (response.status === 401) setError("This token is not valid (unknown, expired or revoked).");
      else if (!response.ok) setError(`The server answered HTTP ${response.status}.`);
      else onToken(token);
    } catch {
      setError("The server could not be reached.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">mailroom</h1>
        <p>Sign in with an API token (ask an admin, or run <code>mailroom token create</code>).</p>
        {notice && <p role="alert" className="notice">{notice}</p>}
        <label htmlFor="token">API token</label>
        <input id="token" type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} autoFocus />
        {error && <p role="alert" className="error">{error}</p>}
        <button type="submit" disabled={busy}>Sign in</button>
      </form>
    </main>
  );
}

function Shell({ token, onSignOut }: { token: string; onSignOut: () => void }) {
  const [{ data, error }] = useQuery({ query: MeDoc, requestPolicy: "network-only" });
  const route = useRoute();
  if (error && !data) return <p role="alert" className="error">Could not load your profile: {error.message}</p>;
  if (!data) return <p className="loading" aria-live="polite">Loading…</p>;
  const me = data.me;
  const isAdmin = me.role === "ADMIN";
  const section = route[0] || "inbox";
  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">mailroom</span>
        <nav aria-label="Main">
          <a href="#/inbox" aria-current={section === "inbox" ? "page" : undefined}>Workspace</a>
          {isAdmin && <a href="#/admin/mailboxes" aria-current={section === "admin" ? "page" : undefined}>Admin</a>}
          <a href="/graphql" target="_blank" rel="noopener">GraphiQL</a>
        </nav>
        <span className="who">
          {me.agent ? me.agent.name : me.role.toLowerCase()} <small>({me.role})</small>
        </span>
        {me.agent && <MyStatus agentId={me.agent.id} status={me.agent.status} />}
        <button type="button" onClick={onSignOut}>Sign out</button>
      </header>
      {section === "admin" && isAdmin ? (
        <Admin token={token} tab={route[1] || "mailboxes"} />
      ) : section === "admin" ? (
        <p role="alert">The admin console is for admins. <button onClick={() => navigate("/inbox")}>Go to the workspace</button></p>
      ) : (
        <Workspace me={me} token={token} openId={route[1] ?? null} />
      )}
    </div>
  );
}
