"""The tamper-evident log (issue 14) on both backends: the chain follower, seals (by command and
every MAILROOM_SEAL_EVERY events, once even with two processes racing), `mailroom audit verify`
against a log edited in its table (an event's state changed, an event deleted, two states
swapped, an event inserted, a decision changed: each named by its position), `--digest`
anchors, `mailroom audit export` checked by tools/verify_export.py alone, and Query.auditSeals."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from api import audit
from api.cli import main as cli
from api.graphql.common import Context
from api.graphql.schema import schema
from api.services import Services
from domain.commands.tokens import Principal
from domain.values import Role
from projections.follower import Follower
from tests.integration.test_graphql_reads import Desk, run

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_export.py"
CLAIM = "mailroom:Claim."  # claims of unique names: no decision reads them
ASSIGNED = "mailroom:Conversation.Assigned"


# ----------------------------------------------------------------- a history, and the table under it


def history(services: Services) -> Desk:
    """Agents, groups, rules, contacts; conversations assigned, queued and unrouted; all chained."""
    desk = Desk(services, alpha=4, beta=2, gamma=1)
    assert services.chain.wait_for(services.projections.head())
    return desk


def table(services: Services) -> tuple[str, str]:
    """The events table and its position column."""
    name = services.app.recorder.events_table_name  # type: ignore[attr-defined]
    return name, ("notification_id" if services.database.is_postgres else "rowid")


def stored(services: Services, topic_prefix: str) -> list[dict[str, Any]]:
    """Rows of the events table whose topic starts so, in position order."""
    name, position = table(services)
    return services.database.query(
        f"SELECT {position} AS position, originator_id, originator_version, topic, state FROM {name} "
        f"WHERE topic LIKE ? ORDER BY {position}", (topic_prefix + "%",))


def set_state(services: Services, position: int, state: bytes) -> None:
    name, column = table(services)
    with services.database.transaction() as tx:
        tx.execute(f"UPDATE {name} SET state = ? WHERE {column} = ?", (state, position))


def delete(services: Services, position: int) -> None:
    name, column = table(services)
    with services.database.transaction() as tx:
        tx.execute(f"DELETE FROM {name} WHERE {column} = ?", (position,))


def verify_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli(["audit", "verify", *args])
    return code, capsys.readouterr().out


# ----------------------------------------------------------------- an untouched log


def test_an_untouched_log_verifies_and_a_seal_prints_its_position_and_digest(
        services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    history(services)
    capsys.readouterr()
    assert cli(["audit", "seal"]) == 0
    position_text, digest = capsys.readouterr().out.split()
    position = int(position_text)
    assert position == int(services.app.recorder.max_notification_id() or 0) - 1  # the seal came after
    assert digest == services.chain.consumer.digest(position)  # type: ignore[attr-defined]
    report = audit.verify(services)
    assert report.ok, report.problems
    assert report.seals == 1 and report.decisions >= 6 and report.chained == report.events
    code, out = verify_cli(capsys, "--digest", f"{position}:{digest}")
    assert code == 0, out
    assert "OK" in out and "digests given: 1" in out


# ----------------------------------------------------------------- tampering, named by position


def test_an_edited_event_is_named_by_its_position(services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    history(services)
    position, digest = audit.seal(services)
    claim = [c for c in stored(services, CLAIM) if b"desk.example" in bytes(c["state"])][3]
    set_state(services, claim["position"], bytes(claim["state"]).replace(b"desk.example", b"evil.example"))
    report = audit.verify(services)
    assert report.first_position == claim["position"]
    assert "edited" in report.problems[0]
    assert any("seal" in p for p in report.problems)  # the seal after it no longer matches either
    code, out = verify_cli(capsys, "--digest", f"{position}:{digest}")
    assert code == 1
    assert f"MISMATCH at position {claim['position']}" in out and "digest given" in out


def test_a_deleted_event_is_named_by_its_position(services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    history(services)
    claim = stored(services, CLAIM)[2]
    delete(services, claim["position"])
    report = audit.verify(services)
    assert report.first_position == claim["position"]
    assert "deleted" in report.problems[0]
    code, out = verify_cli(capsys)
    assert code == 1 and f"MISMATCH at position {claim['position']}" in out


def test_two_swapped_states_are_named_by_the_first(services: Services) -> None:
    history(services)
    claims = [c for c in stored(services, CLAIM) if c["topic"].endswith(".Created")]
    first, second = claims[1], claims[4]
    set_state(services, first["position"], bytes(second["state"]))
    set_state(services, second["position"], bytes(first["state"]))
    report = audit.verify(services)
    assert not report.ok
    assert report.first_position == first["position"]


def test_an_inserted_event_is_named_by_its_position(services: Services) -> None:
    """An event written into a gap of the positions (a rolled-back insert leaves one on PostgreSQL)."""
    desk = Desk(services, alpha=2, beta=1, gamma=1)
    claims = stored(services, CLAIM)
    gap = claims[2]["position"]
    delete(services, gap)  # before the chain: a gap in the history it chains
    assert services.chain.wait_for(services.projections.head())
    assert audit.verify(services).ok
    name, column = table(services)
    model = claims[5]
    forged = uuid4()
    with services.database.transaction() as tx:
        tx.execute(f"INSERT INTO {name} ({column}, originator_id, originator_version, topic, state) "
                   "VALUES (?, ?, ?, ?, ?)",
                   (gap, forged if services.database.is_postgres else forged.hex, 1, model["topic"],
                    bytes(model["state"])))
    report = audit.verify(services)
    assert report.first_position == gap
    assert "inserted" in report.problems[0]
    assert desk.mailbox  # the history was a real one


def test_a_decision_edited_in_the_log_is_a_decision_mismatch(
        services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    desk = history(services)
    assigned = stored(services, ASSIGNED)[0]
    state = json.loads(bytes(assigned["state"]))
    recorded_agent = state["agent_id"]["_data_"]
    other = next(a for a in desk.agents.values() if a.hex != recorded_agent)
    state["agent_id"]["_data_"] = other.hex
    set_state(services, assigned["position"], json.dumps(state, separators=(",", ":")).encode())
    report = audit.verify(services)
    assert report.first_position == assigned["position"]
    decisions = [p for p in report.problems if "decision" in p]
    assert any(f"agent {other}" in p and "recorded, but not re-derived" in p for p in decisions), report.problems
    assert any("re-derived, but not recorded" in p for p in decisions), report.problems
    code, out = verify_cli(capsys)
    assert code == 1 and "decision recorded, but not re-derived: conversation" in out


def test_digests_given_anchor_the_log(services: Services) -> None:
    history(services)
    position, digest = audit.seal(services)
    assert audit.verify(services, [(position, digest), (0, "0" * 64)]).ok
    wrong = ("f" * 64)
    report = audit.verify(services, [(position, wrong)])
    assert report.first_position == position and "digest given" in report.problems[0]
    beyond = audit.verify(services, [(10_000_000, digest)])
    assert not beyond.ok and "no event there" in beyond.problems[0]


# ----------------------------------------------------------------- seals every N events


def test_seals_every_n_events_are_recorded_once_with_two_processes_racing(
        make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILROOM_SEAL_EVERY", "10")
    first, second = make_services(), make_services()
    followers = [Follower(s.chain.consumer, s.chain.consumer.read, s.chain.consumer.head)  # type: ignore[attr-defined]
                 for s in (first, second)]  # unleased: both drive the chain, as two processes may
    errors: list[BaseException] = []

    def follow(follower: Follower, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            follower.catch_up()
        except BaseException as exc:  # reported below
            errors.append(exc)

    for round_ in range(4):  # each round: 12 events, then both catch up at once
        for n in range(4):
            first.app.create_agent(f"agent {round_}.{n}", f"agent{round_}.{n}@desk.example")
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=follow, args=(f, barrier)) for f in followers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, errors
    for follower in followers:
        follower.catch_up()
    sealed = stored(first, "mailroom:AuditSeal.Sealed")
    positions = [json.loads(bytes(s["state"]))["position"] for s in sealed]
    # one per round, none twice: at the last position up to each multiple of ten passed
    assert len(positions) == len({(p - 1) // 10 for p in positions}) == 4, positions
    chain: Any = first.chain.consumer
    other: Any = second.chain.consumer
    assert not other.record(positions[-1], chain.digest(positions[-1]))  # sealed already: refused, ignored
    assert [s["position"] for s in chain.seals()] == sorted(positions)
    report = audit.verify(first)
    assert report.ok and report.seals == len(positions)


# ----------------------------------------------------------------- export, checked alone


def check_export(path: Path, *digests: str) -> subprocess.CompletedProcess[str]:
    args = [arg for d in digests for arg in ("--digest", d)]
    return subprocess.run([sys.executable, "-I", str(TOOL), str(path), *args], capture_output=True, text=True,
                          timeout=60, cwd="/")


def test_an_export_is_verified_on_its_own_and_an_edited_line_fails(
        services: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history(services)
    services.app.create_api_token("auditor", Role.AUDITOR, None)
    position, digest = audit.seal(services)
    out = tmp_path / "log.jsonl"
    assert cli(["audit", "export", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == services.app.recorder.max_notification_id()
    first = json.loads(lines[0])
    assert set(first) >= {"position", "aggregate", "type", "time", "data", "chain"}
    issued = [json.loads(line) for line in lines if '"mailroom:ApiToken.Issued"' in line]
    assert issued and all(i["state"] is None and "token_hash" not in i["data"] for i in issued)
    assert "token_hash" not in out.read_text()
    result = check_export(out, f"{position}:{digest}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert check_export(out, f"{position}:{'0' * 64}").returncode == 1

    # an event's data edited: its state no longer says so
    edited = tmp_path / "edited.jsonl"
    n = next(i for i, line in enumerate(lines) if '"type":"Assigned"' in line)
    line = json.loads(lines[n])
    line["data"]["agent_id"] = str(uuid4())
    edited.write_text("\n".join([*lines[:n], json.dumps(line), *lines[n + 1:]]) + "\n")
    result = check_export(edited)
    assert result.returncode == 1 and f"line {n + 1} " in result.stdout and "data['agent_id']" in result.stdout

    # a state edited, its digests recomputed from there on: only the digest kept outside tells
    state = base64.b64decode(line["state"]).replace(b'"_data_":"', b'"_data_":"0', 1)
    forged = dict(json.loads(lines[n]), state=base64.b64encode(state).decode())
    rechained = lines[:n]
    previous = bytes.fromhex(forged["previous"])
    for text in [json.dumps(forged), *lines[n + 1:]]:
        row = json.loads(text)
        row["previous"] = previous.hex()
        fields = [row["aggregate"], row["version"], row["topic"]]
        state_digest = (hashlib.sha256(base64.b64decode(row["state"])).digest() if row["state"] is not None
                        else bytes.fromhex(row["state_sha256"]))
        previous = hashlib.sha256(previous + b"".join(
            len(b).to_bytes(4, "big") + b for b in (UUID(fields[0]).bytes, int(fields[1]).to_bytes(8, "big"),
                                                    str(fields[2]).encode(), state_digest))).digest()
        row["chain"] = previous.hex()
        rechained.append(json.dumps(row))
    edited.write_text("\n".join(rechained) + "\n")
    assert check_export(edited).returncode in (0, 1)  # self-consistent, or its data betrays it
    result = check_export(edited, f"{position}:{digest}")
    assert result.returncode == 1, result.stdout

    # --after: a partial export chains on from the digest at its start
    capsys.readouterr()
    assert cli(["audit", "export", "--after", str(position - 5)]) == 0
    partial = tmp_path / "partial.jsonl"
    partial.write_text(capsys.readouterr().out)
    assert json.loads(partial.read_text().splitlines()[0])["position"] == position - 4
    result = check_export(partial, f"{position}:{digest}")
    assert result.returncode == 0, result.stdout


# ----------------------------------------------------------------- Query.auditSeals


SEALS = "{ auditSeals { position digest sealedAt } }"


def test_audit_seals_are_listed_to_admins_and_auditors_only(services: Services) -> None:
    history(services)
    first = audit.seal(services)
    services.app.create_agent("late", "late@desk.example")
    second = audit.seal(services)
    for role in (Role.ADMIN, Role.AUDITOR):
        seals = run(services, SEALS, Principal(role, None, None))["auditSeals"]
        assert [(s["position"], s["digest"]) for s in seals] == [first, second]
        assert all(s["sealedAt"] for s in seals)
    agent = services.app.create_agent("agent", "agent@desk.example").id

    async def as_agent() -> Any:
        return await schema.execute(SEALS, context_value=Context(services=services,
                                                                  principal=Principal(Role.AGENT, agent, None)))

    result = asyncio.run(as_agent())
    assert result.errors and result.errors[0].extensions["code"] == "FORBIDDEN"
