import { useState } from "react";
import { useMutation, useQuery } from "urql";
import { graphql } from "../gql";
import type {
  AssignmentStrategy, ConditionField, ConditionInput, ConditionMatch, ConditionOperator, RoutingRuleInput, RuleRowFragment,
} from "../gql/graphql";
import { Field, Problem, problemOf } from "./common";

export const RuleRow = graphql(`
  fragment RuleRow on RoutingRule {
    id name priority enabled match strategy fallbackStrategy
    mailboxes { id address }
    groups { id name }
    conditions { field operator value headerName }
  }
`);

const RulesDoc = graphql(`
  query AdminRules {
    routingRules { ...RuleRow }
    mailboxes { id address }
    agentGroups { id name }
  }
`);

const CreateRuleDoc = graphql(`
  mutation CreateRule($input: RoutingRuleInput!) {
    createRoutingRule(input: $input) { rule { ...RuleRow } userErrors { field message code } }
  }
`);

const UpdateRuleDoc = graphql(`
  mutation UpdateRule($id: UUID!, $input: RoutingRuleInput!) {
    updateRoutingRule(id: $id, input: $input) { rule { ...RuleRow } userErrors { field message code } }
  }
`);

const DeleteRuleDoc = graphql(`
  mutation DeleteRule($id: UUID!) { deleteRoutingRule(id: $id) { deletedId userErrors { message code } } }
`);

const FIELDS: ConditionField[] = ["FROM_ADDRESS", "FROM_DOMAIN", "TO_ADDRESS", "CC_ADDRESS", "SUBJECT", "BODY", "HEADER", "HAS_ATTACHMENT"];
const OPERATORS: ConditionOperator[] = ["EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "STARTS_WITH", "ENDS_WITH", "MATCHES_REGEX", "IS_TRUE", "IS_FALSE"];
const STRATEGIES: AssignmentStrategy[] = ["LOAD_BALANCED", "ROUND_ROBIN", "IDLE_FIRST", "ACCOUNT_OWNER", "CONTACT_OWNER"];
const label = (s: string) => s.toLowerCase().replaceAll("_", " ");

type Draft = RoutingRuleInput & { conditions: ConditionInput[] };

function draftOf(rule: RuleRowFragment | null): Draft {
  return rule
    ? {
        name: rule.name, priority: rule.priority, enabled: rule.enabled, match: rule.match,
        mailboxIds: rule.mailboxes.map((m) => m.id), groupIds: rule.groups.map((g) => g.id),
        conditions: rule.conditions.map((c) => ({ field: c.field, operator: c.operator, value: c.value, headerName: c.headerName })),
        strategy: rule.strategy, fallbackStrategy: rule.fallbackStrategy,
      }
    : { name: "", priority: 100, enabled: true, match: "ALL", mailboxIds: [], groupIds: [], conditions: [], strategy: "LOAD_BALANCED", fallbackStrategy: "LOAD_BALANCED" };
}

export function Rules() {
  const [{ data, error }, refetch] = useQuery({ query: RulesDoc, requestPolicy: "cache-and-network" });
  const reload = () => refetch({ requestPolicy: "network-only" });
  const [editing, setEditing] = useState<RuleRowFragment | "new" | null>(null);
  const [, remove] = useMutation(DeleteRuleDoc);
  const [problem, setProblem] = useState<string | null>(null);
  const rules = [...(data?.routingRules ?? [])].sort((a, b) => a.priority - b.priority);
  return (
    <section aria-labelledby="rules-title">
      <h2 id="rules-title">Routing rules</h2>
      <p><small>Lower priority runs first; the first enabled rule that covers the mailbox and matches wins.</small></p>
      <Problem text={error?.message ?? problem} />
      <table className="grid">
        <thead><tr><th>Priority</th><th>Name</th><th>Mailboxes</th><th>Groups</th><th>Conditions</th><th>Strategy</th><th></th></tr></thead>
        <tbody>
          {rules.map((r) => (
            <tr key={r.id} className={r.enabled ? "" : "inactive"}>
              <td>{r.priority}</td>
              <td><strong>{r.name}</strong>{!r.enabled && <small> (disabled)</small>}</td>
              <td>{r.mailboxes.map((m) => m.address).join(", ")}</td>
              <td>{r.groups.map((g) => g.name).join(", ")}</td>
              <td>{r.conditions.length === 0 ? "every message" : `${r.match.toLowerCase()} of ${r.conditions.length}`}</td>
              <td>{label(r.strategy)}</td>
              <td className="actions">
                <button type="button" onClick={() => setEditing(r)}>Edit</button>
                <button type="button" className="danger" onClick={async () => {
                  if (!window.confirm(`Delete rule ${r.name}?`)) return;
                  const res = await remove({ id: r.id });
                  setProblem(problemOf(res.error, res.data?.deleteRoutingRule.userErrors));
                  reload();
                }}>Delete</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editing === null ? (
        <button type="button" onClick={() => setEditing("new")}>New rule</button>
      ) : (
        <RuleEditor key={editing === "new" ? "new" : editing.id} rule={editing === "new" ? null : editing}
          mailboxes={data?.mailboxes ?? []} groups={data?.agentGroups ?? []}
          onDone={() => { setEditing(null); reload(); }} onCancel={() => setEditing(null)} />
      )}
    </section>
  );
}

function RuleEditor({ rule, mailboxes, groups, onDone, onCancel }: {
  rule: RuleRowFragment | null;
  mailboxes: readonly { id: string; address: string }[];
  groups: readonly { id: string; name: string }[];
  onDone: () => void; onCancel: () => void;
}) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(rule));
  const [problem, setProblem] = useState<string | null>(null);
  const [, create] = useMutation(CreateRuleDoc);
  const [, update] = useMutation(UpdateRuleDoc);
  const set = (patch: Partial<Draft>) => setDraft({ ...draft, ...patch });
  const toggle = (list: readonly string[], id: string, on: boolean) => (on ? [...list, id] : list.filter((x) => x !== id));
  const setCondition = (i: number, patch: Partial<ConditionInput>) =>
    set({ conditions: draft.conditions.map((c, j) => (j === i ? { ...c, ...patch } : c)) });

  async function save(event: React.FormEvent) {
    event.preventDefault();
    const input = { ...draft, conditions: draft.conditions.map((c) => ({ ...c, headerName: c.field === "HEADER" ? c.headerName : null })) };
    const r = rule ? await update({ id: rule.id, input }) : await create({ input });
    const payload = r.data && ("updateRoutingRule" in r.data ? r.data.updateRoutingRule : r.data.createRoutingRule);
    const p = problemOf(r.error, payload?.userErrors);
    setProblem(p);
    if (!p) onDone();
  }

  const mailboxIds = draft.mailboxIds as string[];
  const groupIds = draft.groupIds as string[];
  return (
    <form className="card stack rule-editor" onSubmit={save} aria-labelledby="rule-editor-title">
      <h3 id="rule-editor-title">{rule ? `Edit rule “${rule.name}”` : "New rule"}</h3>
      <div className="row-fields">
        <Field label="Rule name"><input required value={draft.name} onChange={(e) => set({ name: e.target.value })} /></Field>
        <Field label="Priority"><input type="number" className="narrow" value={draft.priority ?? 100} onChange={(e) => set({ priority: Number(e.target.value) })} /></Field>
        <label className="check"><input type="checkbox" checked={draft.enabled ?? true} onChange={(e) => set({ enabled: e.target.checked })} /> Enabled</label>
      </div>
      <div className="row-fields">
        <fieldset>
          <legend>Mailboxes</legend>
          {mailboxes.map((m) => (
            <label key={m.id} className="check">
              <input type="checkbox" checked={mailboxIds.includes(m.id)} onChange={(e) => set({ mailboxIds: toggle(mailboxIds, m.id, e.target.checked) })} />
              {m.address}
            </label>
          ))}
          {mailboxes.length === 0 && <small>Bind a mailbox first.</small>}
        </fieldset>
        <fieldset>
          <legend>Groups</legend>
          {groups.map((g) => (
            <label key={g.id} className="check">
              <input type="checkbox" checked={groupIds.includes(g.id)} onChange={(e) => set({ groupIds: toggle(groupIds, g.id, e.target.checked) })} />
              {g.name}
            </label>
          ))}
          {groups.length === 0 && <small>Create a group first.</small>}
        </fieldset>
      </div>
      <fieldset>
        <legend>Conditions</legend>
        <Field label="Match">
          <select value={draft.match ?? "ALL"} onChange={(e) => set({ match: e.target.value as ConditionMatch })}>
            <option value="ALL">all conditions</option><option value="ANY">any condition</option>
          </select>
        </Field>
        {draft.conditions.length === 0 && <p><small>No conditions: the rule takes every message of its mailboxes.</small></p>}
        <ol className="conditions">
          {draft.conditions.map((c, i) => (
            <li key={i} className="row-fields">
              <Field label={`Condition ${i + 1} field`}>
                <select value={c.field} onChange={(e) => setCondition(i, { field: e.target.value as ConditionField })}>
                  {FIELDS.map((f) => <option key={f} value={f}>{label(f)}</option>)}
                </select>
              </Field>
              {c.field === "HEADER" && (
                <Field label={`Condition ${i + 1} header name`}><input value={c.headerName ?? ""} onChange={(e) => setCondition(i, { headerName: e.target.value })} /></Field>
              )}
              <Field label={`Condition ${i + 1} operator`}>
                <select value={c.operator} onChange={(e) => setCondition(i, { operator: e.target.value as ConditionOperator })}>
                  {OPERATORS.map((o) => <option key={o} value={o}>{label(o)}</option>)}
                </select>
              </Field>
              {c.operator !== "IS_TRUE" && c.operator !== "IS_FALSE" && (
                <Field label={`Condition ${i + 1} value`}><input value={c.value ?? ""} onChange={(e) => setCondition(i, { value: e.target.value })} /></Field>
              )}
              <button type="button" className="link" aria-label={`Remove condition ${i + 1}`}
                onClick={() => set({ conditions: draft.conditions.filter((_, j) => j !== i) })}>remove</button>
            </li>
          ))}
        </ol>
        <button type="button" onClick={() => set({ conditions: [...draft.conditions, { field: "SUBJECT", operator: "CONTAINS", value: "" }] })}>
          Add condition
        </button>
      </fieldset>
      <div className="row-fields">
        <Field label="Strategy">
          <select value={draft.strategy} onChange={(e) => set({ strategy: e.target.value as AssignmentStrategy })}>
            {STRATEGIES.map((s) => <option key={s} value={s}>{label(s)}</option>)}
          </select>
        </Field>
        <Field label="Fallback strategy" hint="For account/contact owner when no owner is eligible">
          <select value={draft.fallbackStrategy ?? "LOAD_BALANCED"} onChange={(e) => set({ fallbackStrategy: e.target.value as AssignmentStrategy })}>
            {STRATEGIES.filter((s) => s !== "ACCOUNT_OWNER" && s !== "CONTACT_OWNER").map((s) => <option key={s} value={s}>{label(s)}</option>)}
          </select>
        </Field>
      </div>
      <Problem text={problem} />
      <div className="actions">
        <button type="submit">Save rule</button>
        <button type="button" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}
