import { useState } from "react";
import { useMutation, useQuery } from "urql";
import { graphql } from "../gql";
import type { AgentStatus } from "../gql/graphql";
import { Field, Problem, problemOf } from "./common";

const AgentsDoc = graphql(`
  query AdminAgents {
    agents { id name email status capacity active activeConversations receivedToday groups { id name } }
  }
`);

const CreateAgentDoc = graphql(`
  mutation CreateAgent($input: CreateAgentInput!) {
    createAgent(input: $input) { agent { id name } userErrors { field message code } }
  }
`);

const SetStatusDoc = graphql(`
  mutation SetAgentStatus($agentId: UUID!, $status: AgentStatus!) {
    setAgentStatus(agentId: $agentId, status: $status) { agent { id status } userErrors { message code } }
  }
`);

const UpdateAgentDoc = graphql(`
  mutation UpdateAgent($input: UpdateAgentInput!) {
    updateAgent(input: $input) { agent { id capacity } userErrors { field message code } }
  }
`);

const DeactivateDoc = graphql(`
  mutation DeactivateAgent($id: UUID!) {
    deactivateAgent(id: $id) { agent { id active } userErrors { message code } }
  }
`);

const GroupsDoc = graphql(`
  query AdminGroups {
    agentGroups { id name members { id name status active } }
    agents { id name active }
  }
`);

const CreateGroupDoc = graphql(`
  mutation CreateGroup($input: CreateAgentGroupInput!) {
    createAgentGroup(input: $input) { group { id name } userErrors { field message code } }
  }
`);

const AddMembersDoc = graphql(`
  mutation AddMembers($groupId: UUID!, $agentIds: [UUID!]!) {
    addGroupMembers(groupId: $groupId, agentIds: $agentIds) { group { id } userErrors { message code } }
  }
`);

const RemoveMembersDoc = graphql(`
  mutation RemoveMembers($groupId: UUID!, $agentIds: [UUID!]!) {
    removeGroupMembers(groupId: $groupId, agentIds: $agentIds) { group { id } userErrors { message code } }
  }
`);

const DeleteGroupDoc = graphql(`
  mutation DeleteGroup($id: UUID!) { deleteAgentGroup(id: $id) { deletedId userErrors { message code } } }
`);

const AGENT_STATUSES: AgentStatus[] = ["ONLINE", "AWAY", "OFFLINE"];

export function Agents() {
  const [{ data, error }, refetch] = useQuery({ query: AgentsDoc, requestPolicy: "cache-and-network" });
  const reload = () => refetch({ requestPolicy: "network-only" });
  const [, setStatus] = useMutation(SetStatusDoc);
  const [, update] = useMutation(UpdateAgentDoc);
  const [, deactivate] = useMutation(DeactivateDoc);
  const [, create] = useMutation(CreateAgentDoc);
  const [problem, setProblem] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [capacity, setCapacity] = useState("");
  return (
    <section aria-labelledby="agents-title">
      <h2 id="agents-title">Agents</h2>
      <Problem text={error?.message ?? problem} />
      <table className="grid">
        <thead><tr><th>Name</th><th>Status</th><th>Capacity</th><th>Active / today</th><th>Groups</th><th></th></tr></thead>
        <tbody>
          {data?.agents.map((a) => (
            <tr key={a.id} className={a.active ? "" : "inactive"}>
              <td><strong>{a.name}</strong><br /><small>{a.email}</small></td>
              <td>
                {a.active ? (
                  <select aria-label={`Status of ${a.name}`} value={a.status} onChange={async (e) => {
                    const r = await setStatus({ agentId: a.id, status: e.target.value as AgentStatus });
                    setProblem(problemOf(r.error, r.data?.setAgentStatus.userErrors));
                    reload();
                  }}>
                    {AGENT_STATUSES.map((s) => <option key={s} value={s}>{s.toLowerCase()}</option>)}
                  </select>
                ) : "deactivated"}
              </td>
              <td>
                <input aria-label={`Capacity of ${a.name}`} type="number" min={0} className="narrow" defaultValue={a.capacity ?? ""}
                  placeholder="no limit" onBlur={async (e) => {
                    const value = e.target.value === "" ? null : Number(e.target.value);
                    if (value === (a.capacity ?? null)) return;
                    const r = await update({ input: { id: a.id, capacity: value } });
                    setProblem(problemOf(r.error, r.data?.updateAgent.userErrors));
                    reload();
                  }} />
              </td>
              <td>{a.activeConversations} / {a.receivedToday}</td>
              <td>{a.groups.map((g) => g.name).join(", ")}</td>
              <td>
                {a.active && (
                  <button type="button" className="danger" onClick={async () => {
                    if (!window.confirm(`Deactivate ${a.name}? Their tokens stop working and their open conversations are routed again.`)) return;
                    const r = await deactivate({ id: a.id });
                    setProblem(problemOf(r.error, r.data?.deactivateAgent.userErrors));
                    reload();
                  }}>Deactivate</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="card row-fields" aria-labelledby="new-agent" onSubmit={async (e) => {
        e.preventDefault();
        const r = await create({ input: { name, email, capacity: capacity === "" ? null : Number(capacity) } });
        const p = problemOf(r.error, r.data?.createAgent.userErrors);
        setProblem(p);
        if (!p) { setName(""); setEmail(""); setCapacity(""); reload(); }
      }}>
        <h3 id="new-agent">New agent</h3>
        <Field label="Name"><input required value={name} onChange={(e) => setName(e.target.value)} /></Field>
        <Field label="Email"><input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} /></Field>
        <Field label="Capacity"><input type="number" min={0} value={capacity} placeholder="no limit" onChange={(e) => setCapacity(e.target.value)} /></Field>
        <button type="submit">Create agent</button>
      </form>
    </section>
  );
}

export function Groups() {
  const [{ data, error }, refetch] = useQuery({ query: GroupsDoc, requestPolicy: "cache-and-network" });
  const reload = () => refetch({ requestPolicy: "network-only" });
  const [, create] = useMutation(CreateGroupDoc);
  const [, add] = useMutation(AddMembersDoc);
  const [, removeMembers] = useMutation(RemoveMembersDoc);
  const [, removeGroup] = useMutation(DeleteGroupDoc);
  const [problem, setProblem] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [members, setMembers] = useState<string[]>([]);
  const agents = (data?.agents ?? []).filter((a) => a.active);
  return (
    <section aria-labelledby="groups-title">
      <h2 id="groups-title">Groups</h2>
      <p><small>Members are listed in round-robin order, which is the order they joined. The API has no reorder
        operation, so there is no drag and drop: to move a member to the end, remove them and add them again.</small></p>
      <Problem text={error?.message ?? problem} />
      {data?.agentGroups.map((g) => (
        <div key={g.id} className="card" role="group" aria-label={`Group ${g.name}`}>
          <h3>{g.name}</h3>
          <ol className="members">
            {g.members.map((m) => (
              <li key={m.id}>
                {m.name} <small>({m.active ? m.status.toLowerCase() : "deactivated"})</small>{" "}
                <button type="button" className="link" aria-label={`Remove ${m.name} from ${g.name}`} onClick={async () => {
                  const r = await removeMembers({ groupId: g.id, agentIds: [m.id] });
                  setProblem(problemOf(r.error, r.data?.removeGroupMembers.userErrors));
                  reload();
                }}>remove</button>
              </li>
            ))}
          </ol>
          <label htmlFor={`add-${g.id}`}>Add member</label>{" "}
            <select id={`add-${g.id}`} value="" onChange={async (e) => {
              if (!e.target.value) return;
              const r = await add({ groupId: g.id, agentIds: [e.target.value] });
              setProblem(problemOf(r.error, r.data?.addGroupMembers.userErrors));
              reload();
            }}>
              <option value="">(choose an agent)</option>
              {agents.filter((a) => !g.members.some((m) => m.id === a.id)).map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
            </select>{" "}
          <button type="button" className="danger" onClick={async () => {
            if (!window.confirm(`Delete group ${g.name}?`)) return;
            const r = await removeGroup({ id: g.id });
            setProblem(problemOf(r.error, r.data?.deleteAgentGroup.userErrors));
            reload();
          }}>Delete group</button>
        </div>
      ))}
      <form className="card stack" aria-labelledby="new-group" onSubmit={async (e) => {
        e.preventDefault();
        const r = await create({ input: { name, memberIds: members } });
        const p = problemOf(r.error, r.data?.createAgentGroup.userErrors);
        setProblem(p);
        if (!p) { setName(""); setMembers([]); reload(); }
      }}>
        <h3 id="new-group">New group</h3>
        <Field label="Group name"><input required value={name} onChange={(e) => setName(e.target.value)} /></Field>
        <fieldset>
          <legend>Members (in this order)</legend>
          {agents.map((a) => (
            <label key={a.id} className="check">
              <input type="checkbox" checked={members.includes(a.id)}
                onChange={(e) => setMembers(e.target.checked ? [...members, a.id] : members.filter((x) => x !== a.id))} />
              {a.name}
            </label>
          ))}
        </fieldset>
        <button type="submit">Create group</button>
      </form>
    </section>
  );
}
