import { navigate } from "./route";
import { Mailboxes } from "./admin/Mailboxes";
import { Agents, Groups } from "./admin/People";
import { Rules } from "./admin/Rules";
import { Tokens, Quarantine, SidebarSources, Customers } from "./admin/Other";

const TABS: [string, string][] = [
  ["mailboxes", "Mailboxes"],
  ["agents", "Agents"],
  ["groups", "Groups"],
  ["rules", "Routing rules"],
  ["sidebar", "Sidebar sources"],
  ["customers", "Contacts & accounts"],
  ["tokens", "API tokens"],
  ["quarantine", "Quarantine"],
];

export function Admin({ token, tab }: { token: string; tab: string }) {
  return (
    <div className="admin">
      <nav aria-label="Admin sections" className="admin-tabs">
        <select aria-label="Admin section" className="admin-tabs-select" value={tab} onChange={(e) => navigate(`/admin/${e.target.value}`)}>
          {TABS.map(([id, label]) => <option key={id} value={id}>{label}</option>)}
        </select>
        <ul>
          {TABS.map(([id, label]) => (
            <li key={id}><a href={`#/admin/${id}`} aria-current={tab === id ? "page" : undefined}>{label}</a></li>
          ))}
        </ul>
      </nav>
      <main className="admin-main">
        {tab === "mailboxes" && <Mailboxes />}
        {tab === "agents" && <Agents />}
        {tab === "groups" && <Groups />}
        {tab === "rules" && <Rules />}
        {tab === "sidebar" && <SidebarSources />}
        {tab === "customers" && <Customers />}
        {tab === "tokens" && <Tokens />}
        {tab === "quarantine" && <Quarantine token={token} />}
      </main>
    </div>
  );
}
