"""The directory read model against the log (SQLite and PostgreSQL): a rebuild equals the
live tables, a crash mid-batch leaves nothing half-applied, a restart resumes and applies
every event exactly once, two processes may drive the same view, and a command's writer
can read its own write."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from api.bootstrap import Services
from domain.commands.base import Written
from domain.routing import RuleSpec
from domain.values import AgentStatus, AssignmentStrategy, Role, ServerSettings, TransportSecurity
from projections.directory import Directory as DirectoryView
from projections.rebuild import rebuild, verify
from projections.tables import Rows
from tests.conftest import GOOD_PASSWORD

IMAP_IN = ServerSettings("imap.example.com", 993, TransportSecurity.TLS, "")


def the_view(services: Services) -> DirectoryView:
    view = services.projections.views["directory"]
    assert isinstance(view, DirectoryView)
    return view


def snapshot(services: Services) -> dict[str, list[dict[str, Any]]]:
    """Every row of every directory table, in key order."""
    tables = {}
    for table in the_view(services).tables:
        order = ", ".join(table.key)
        tables[table.name] = services.database.query(f"SELECT * FROM {table.name} ORDER BY {order}")
    return tables


def rebuilt(services: Services) -> dict[str, list[dict[str, Any]]]:
    """The tables a clean replay of the whole log gives."""
    rebuild(services.projections, the_view(services))
    return snapshot(services)


def position(services: Services) -> int:
    return services.projections.positions()["directory"]


def write_history(services: Services, tag: str = "") -> dict[str, UUID]:
    """A realistic admin history touching every directory table, including changes that
    replace and remove rows. Nothing waits for the projections."""
    app = services.app
    ids: dict[str, UUID] = {}
    written, _ = app.bind_mailbox(f"help{tag}@example.com", GOOD_PASSWORD, incoming=IMAP_IN)
    ids["help"] = written.id
    written, _ = app.bind_mailbox(f"sales{tag}@example.com", GOOD_PASSWORD, display_name="Sales",
                                  incoming=IMAP_IN)
    ids["sales"] = written.id
    app.set_reply_settings(ids["help"], "[{mailbox}] {subject}", "Regards")
    app.update_mailbox(ids["sales"], enabled=False)
    agents = [app.create_agent(f"Agent {n}", f"agent{n}{tag}@example.com", capacity=n).id for n in range(4)]
    for n, agent in enumerate(agents):
        ids[f"agent{n}"] = agent
    app.update_agent(agents[0], name="Agent Zero", capacity=None)
    app.set_agent_status(agents[1], AgentStatus.AWAY)
    ids["tier1"] = app.create_agent_group(f"Tier 1{tag}", [agents[2], agents[0]]).id
    ids["tier2"] = app.create_agent_group(f"Tier 2{tag}", [agents[1]]).id
    app.add_group_members(ids["tier1"], [agents[3], agents[1]])
    app.remove_group_members(ids["tier1"], [agents[0]])
    app.add_group_members(ids["tier1"], [agents[0]])
    spec = RuleSpec(f"Billing{tag}", [ids["help"]], [ids["tier1"]], AssignmentStrategy.ROUND_ROBIN, 5)
    ids["rule"] = app.create_routing_rule(spec).id
    app.update_routing_rule(ids["rule"], RuleSpec(
        f"Billing{tag}", [ids["help"], ids["sales"]], [ids["tier2"], ids["tier1"]],
        AssignmentStrategy.LOAD_BALANCED, 3))
    ids["other_rule"] = app.create_routing_rule(
        RuleSpec(f"Other{tag}", [ids["sales"]], [ids["tier2"]], AssignmentStrategy.IDLE_FIRST)).id
    app.delete_routing_rule(ids["other_rule"])
    ids["account"] = app.upsert_account(None, f"Acme{tag}", [f"acme{tag}.com", f"acme{tag}.io"]).id
    app.upsert_account(ids["account"], f"Acme Inc{tag}", [f"acme{tag}.io", f"acme{tag}.de"], owner_id=agents[2])
    ids["contact"] = app.upsert_contact(f"Bob@Acme{tag}.com", name="Bob").id
    app.upsert_contact(f"bob@acme{tag}.com", account_id=ids["account"], owner_id=agents[3])
    ids["leaver"] = app.create_agent("Leaver", f"leaver{tag}@example.com").id
    ids["laptop"] = app.create_api_token(f"Leaver's laptop{tag}", Role.AGENT, ids["leaver"],
                                         datetime.now(UTC) + timedelta(days=1))[1].id
    ids["ops"] = app.create_api_token(f"ops{tag}", Role.ADMIN, None)[1].id
    app.revoke_api_token(ids["ops"])
    app.deactivate_agent(ids["leaver"])
    return ids


def test_rebuild_equals_live_tables_and_verify_finds_corruption(services: Services) -> None:
    ids = write_history(services)
    services.projections.catch_up()
    live = snapshot(services)
    assert all(live[name] for name in live), "the history should fill every directory table"
    assert position(services) == services.projections.head()

    head = rebuild(services.projections, the_view(services))

    assert head == services.projections.head()
    assert position(services) == head
    assert snapshot(services) == live
    assert verify(services.projections, the_view(services)) == []

    with services.database.transaction() as tx:
        tx.execute("UPDATE rm_agents SET name = 'x' WHERE id = ?", (str(ids["agent2"]),))
    differences = verify(services.projections, the_view(services))
    assert len(differences) == 1
    assert "rm_agents" in differences[0]
    assert str(ids["agent2"]) in differences[0]

    # A rebuild repairs it.
    rebuild(services.projections, the_view(services))
    assert snapshot(services) == live
    assert verify(services.projections, the_view(services)) == []


def test_verify_reports_missing_and_extra_rows(services: Services) -> None:
    ids = write_history(services)
    services.projections.catch_up()
    with services.database.transaction() as tx:
        tx.execute("DELETE FROM rm_group_members WHERE group_id = ?", (str(ids["tier2"]),))
        tx.execute("INSERT INTO rm_contacts (id, email) VALUES ('ghost', 'ghost@example.com')")

    differences = verify(services.projections, the_view(services))

    assert any(d.startswith("rm_group_members") and str(ids["tier2"]) in d for d in differences)
    assert any(d.startswith("rm_contacts") and "ghost" in d for d in differences)


def test_crash_mid_batch_applies_nothing_and_a_restart_applies_everything_once(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = make_services()
    write_history(services, "-a")
    services.projections.catch_up()
    before = snapshot(services)
    start = position(services)
    applied = services.projections.followers["directory"].consumed
    write_history(services, "-b")
    head = services.projections.head()
    assert head - start > 10

    # 1. A handler fails on the 7th event of the batch.
    original_apply = DirectoryView.apply
    seen = []

    def failing_apply(self: DirectoryView, event: Any, rows: Rows) -> None:
        seen.append(event)
        if len(seen) == 7:
            raise RuntimeError("handler crashed")
        original_apply(self, event, rows)

    monkeypatch.setattr(DirectoryView, "apply", failing_apply)
    with pytest.raises(RuntimeError, match="handler crashed"):
        services.projections.catch_up()
    assert position(services) == start
    assert snapshot(services) == before

    # 2. The database writes of the batch went out, then the process died before commit.
    monkeypatch.setattr(DirectoryView, "apply", original_apply)
    original_flush = Rows.flush

    def flush_then_die(self: Rows) -> None:
        original_flush(self)
        raise RuntimeError("killed after flush")

    monkeypatch.setattr(Rows, "flush", flush_then_die)
    with pytest.raises(RuntimeError, match="killed after flush"):
        services.projections.catch_up()
    assert position(services) == start
    assert snapshot(services) == before
    assert services.projections.followers["directory"].consumed == applied
    monkeypatch.setattr(Rows, "flush", original_flush)
    services.close()

    # 3. Restart: resumes at the stored position and applies each remaining event once.
    restarted = make_services()
    assert position(restarted) == start
    # The other views went on past the failing one; the directory resumes where it stopped.
    assert restarted.projections.positions()["conversations"] == head
    assert restarted.projections.catch_up() == head - start
    assert restarted.projections.applied == head - start
    assert position(restarted) == head
    assert restarted.projections.catch_up() == 0

    live = snapshot(restarted)
    assert live != before
    assert verify(restarted.projections, the_view(restarted)) == []
    assert rebuilt(restarted) == live
    members = restarted.database.query(
        "SELECT group_id, agent_id, COUNT(*) AS n FROM rm_group_members GROUP BY group_id, agent_id")
    assert members and all(r["n"] == 1 for r in members)
    positions = restarted.database.query(
        "SELECT group_id, position, COUNT(*) AS n FROM rm_group_members GROUP BY group_id, position")
    assert all(r["n"] == 1 for r in positions), "two members share one joining position"


def test_two_processes_drive_the_view_concurrently(make_services: Callable[..., Services]) -> None:
    first, second = make_services(), make_services()
    writing_done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(6):
                write_history(first, f"-{n}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            writing_done.set()

    def projector(services: Services) -> None:
        try:
            while not writing_done.is_set():
                services.projections.catch_up()
                time.sleep(0.005)  # a follower polls; it does not spin
            services.projections.catch_up()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=projector, args=(first,)),
               threading.Thread(target=projector, args=(second,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    head = first.projections.head()
    every_view_at_head = {name: head for name in first.projections.views}
    assert first.projections.positions() == second.projections.positions() == every_view_at_head
    # Each event was applied (once per view) by exactly one of the two.
    assert first.projections.applied + second.projections.applied == head * len(every_view_at_head)
    assert first.projections.applied > 0
    assert verify(first.projections, the_view(first)) == []
    live = snapshot(first)
    assert len(live["rm_agents"]) == 30 and len(live["rm_api_tokens"]) == 12
    assert rebuilt(second) == live


def test_read_your_writes(make_services: Callable[..., Services]) -> None:
    services = make_services()
    replica = make_services()  # another API process over the same database

    written = services.app.create_agent("Alice", "alice@example.com")
    assert isinstance(written, Written)
    assert written.position == services.projections.head()
    assert services.directory.agent(written.id) is None  # not projected yet

    assert services.projections.wait_for(written.position) is True
    row = services.directory.agent(written.id)
    assert row is not None
    assert row["email"] == "alice@example.com"

    changed = services.app.update_agent(written.id, name="Alice Smith")
    assert replica.projections.wait_for(changed.position) is True
    assert replica.directory.agent(written.id)["name"] == "Alice Smith"  # type: ignore[index]

    # A command that changes nothing has nothing to wait for.
    unchanged = services.app.update_agent(written.id, name="Alice Smith")
    assert unchanged.position is None
    assert services.projections.wait_for(unchanged.position) is True

    # Waiting is bounded: a position not (yet) in the log is reported, not waited on forever.
    assert services.projections.wait_for(services.projections.head() + 5, timeout=0.2) is False
