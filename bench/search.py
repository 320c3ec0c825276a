"""Full-text search latency (ConversationFilter.text, projections/search.py) at 100k conversations.

Setup (untimed): mailroom bootstrapped over a fresh database, then --size conversations seeded
straight into the read models in bulk: rm_conversations (80% CLOSED, 12% OPEN, 5% QUEUED, 3%
UNROUTED, one every 30 s) and rm_search as the search view writes it (its FTS5 triggers or
generated tsvector filling the index; PostgreSQL's GIN index built after the load, then VACUUM
ANALYZE as autovacuum would). Each conversation: a subject from a few templates with an order number,
a customer address (person<j>@c<j % 300>.example, 2,000 customers), and one to three messages of
40-120 words drawn from a 20,000-word vocabulary with Zipf-like frequencies (so some words are
in most conversations and most words in few), about 0.5 KB of indexed text per message.

Measured, per backend and query kind: --requests sequential calls after 10 warm-up calls, in
--rounds rounds (the round with the lowest p99 counts: a busy machine spoils single rounds), each
timed from call to rows:

    rows     ConversationQueries.rows(filter, 50, None): the page's statement (what
             conversations(filter: {text}, first: 50) runs when totalCount is not asked)
    page 2   the same for the page after the first (a cursor)
    count    ConversationQueries.count(filter): totalCount's statements (all matches counted;
             a quarter of --requests)
    graphql  conversations(filter: {text: ...}, first: 50) { edges { node { id subject status
             customerEmail lastMessageAt } } } executed in-process (strawberry, an ADMIN principal)

Query kinds: a common word (in about half the conversations), a rare word (in about 10), a
prefix of 3 letters (`xyz`, every unquoted word of 3+ letters is a prefix) of some 25 words, the
common word's first 3 letters as a prefix, a two-word phrase of common words ("quoted"), and
the common word with status OPEN, in one group's conversations (~1% of them: an AGENT's page),
and of one customer (~50 conversations).

Goal: p99 < 100 ms at 100k for the page (rows, graphql).

    .venv/bin/python -m bench.search [--size 100000] [--requests 200] [--rounds 2]
        [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from api.graphql.common import Context
from api.graphql.schema import schema
from api.services import Services
from bench.common import BACKENDS, fresh_database, services, table
from domain.commands.tokens import Principal
from domain.values import Role
from projections import conversations as c
from projections import search as s
from projections.conversation_queries import ConversationFilter

SEED = 13
VOCABULARY = 20_000
CUSTOMERS = 2_000
BATCH = 5_000
BASE = datetime(2025, 1, 1, tzinfo=UTC)
SPACING = timedelta(seconds=30)
STATUSES = (("CLOSED", 0.80), ("OPEN", 0.12), ("QUEUED", 0.05), ("UNROUTED", 0.03))
SUBJECTS = ("Order {n} not delivered", "Invoice {n} is wrong", "Question about order {n}", "Refund for {n}",
            "Cannot log in", "Change of address", "Payment failed for order {n}")
GRAPHQL = ("query($filter: ConversationFilter) { conversations(first: 50, filter: $filter) { edges { node { "
           "id subject status customerEmail lastMessageAt } } } }")
ADMIN = Principal(Role.ADMIN, None, None)
GROUPS = [str(uuid.UUID(int=g + 1)) for g in range(100)]  # each routed conversation to one of 100 groups


def vocabulary(rng: random.Random) -> list[str]:
    """Pseudo-words of 3-10 letters, distinct."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        words["".join(rng.choice(letters) for _ in range(rng.randint(3, 10)))] = None
    return list(words)


def seed(svc: Services, size: int) -> tuple[list[str], Counter[str]]:
    """Seeds `size` conversations; returns the vocabulary (by rank) and each word's document frequency."""
    rng = random.Random(SEED)
    words = vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / (rank + 1) ** 1.07 for rank in range(VOCABULARY)))
    total = cumulative[-1]
    frequency: Counter[str] = Counter()
    mailbox = str(uuid.uuid4())
    database = svc.database
    postgres = database.is_postgres
    with database.transaction() as tx:
        for columns in c.CONVERSATIONS.indexes:
            tx.execute(f"DROP INDEX IF EXISTS {c.CONVERSATIONS.name}_by_{'_'.join(columns)}")
        if postgres:
            tx.execute(f"DROP INDEX IF EXISTS {s.SEARCH.name}_tsv")
    done = 0
    while done < size:
        conversations, rows, groups = [], [], []
        for i in range(done, min(done + BATCH, size)):
            cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            at = (BASE + i * SPACING).isoformat()
            sort_key = f"{at}|{cid}"
            roll, status = rng.random(), "UNROUTED"
            for name, share in STATUSES:
                if roll < share:
                    status = name
                    break
                roll -= share
            customer = rng.randrange(CUSTOMERS)
            email = f"person{customer}@c{customer % 300}.example"
            subject = rng.choice(SUBJECTS).format(n=rng.randint(10_000, 99_999))
            texts = []
            for _ in range(1 + (rng.random() < 0.4) + (rng.random() < 0.1)):
                picks = [words[bisect.bisect_left(cumulative, rng.random() * total)]
                         for _ in range(rng.randint(40, 120))]
                texts.append(" ".join(picks))
            body = s.indexed(" ".join(texts))[-s.BODY_CAP:]
            head = s.indexed(f"{subject} {email}")
            frequency.update(set(head.split()) | set(body.split()))
            group = GROUPS[rng.randrange(len(GROUPS))]
            routed = status != "UNROUTED"
            if routed:
                groups.append((cid, group, sort_key))
            conversations.append((cid, f"R{i:07d}", mailbox, subject, email, status,
                                  f'["{group}"]' if routed else "[]", at, at, len(texts), 0, sort_key))
            rows.append((cid, s.rank(sort_key), head, body, s.pairs_of(head, body) if postgres else ""))
        with database.transaction() as tx:
            tx.executemany(f"INSERT INTO {c.CONVERSATIONS.name} (id, ref, mailbox_id, subject, customer_email, "
                           "status, group_ids, created_at, last_message_at, message_count, assignment_count, "
                           "sort_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", conversations)
            tx.executemany(f"INSERT INTO {s.SEARCH.name} (conversation_id, n, head, body, pairs) "
                           "VALUES (?, ?, ?, ?, ?)", rows)
            tx.executemany(f"INSERT INTO {c.CONVERSATION_GROUPS.name} (conversation_id, group_id, sort_key) "
                           "VALUES (?, ?, ?)", groups)
        done += len(rows)
    with database.transaction() as tx:
        c.CONVERSATIONS.create(tx)
        s.SEARCH.create(tx)
    if postgres:  # as autovacuum would have: statistics, and the visibility map (a count reads the index alone)
        with database.connect() as connection:
            connection.execute("VACUUM ANALYZE")
    else:
        with database.transaction() as tx:
            tx.execute("ANALYZE")
    return words, frequency


def kinds(frequency: Counter[str], size: int) -> list[tuple[str, ConversationFilter]]:
    """The query kinds, picked from the seeded frequencies."""
    def near(share: float, exclude: Sequence[str] = ()) -> str:
        return min((w for w in frequency if w.isalpha() and w not in exclude and len(w) >= 4),
                   key=lambda w: abs(frequency[w] - share * size))

    common = near(0.5)
    second = near(0.35, [common])
    rare = near(10 / size)
    prefixes = Counter(w[:3] for w in frequency if w.isalpha() and len(w) > 3)
    prefix = min(prefixes, key=lambda p: abs(prefixes[p] - 25))  # a prefix of some 25 words
    return [
        (f"common word ({common}: {frequency[common]})", ConversationFilter(text=common)),
        (f"rare word ({rare}: {frequency[rare]})", ConversationFilter(text=rare)),
        (f"prefix ({prefix}*: {prefixes[prefix]} words)", ConversationFilter(text=prefix)),
        (f"common prefix ({common[:3]}*: {prefixes[common[:3]]} words)", ConversationFilter(text=common[:3])),
        (f'phrase ("{common} {second}")', ConversationFilter(text=f'"{common} {second}"')),
        (f"common word + OPEN ({common})", ConversationFilter(text=common, status="OPEN")),
        (f"common word, one group ({common})", ConversationFilter(text=common, group_ids=(GROUPS[0],))),
        (f"common word + customer ({common})", ConversationFilter(text=common, customer_email="person7@c7.example")),
    ]


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def measure(call: Callable[[], object], requests: int, rounds: int) -> tuple[float, float]:
    for _ in range(10):
        call()
    best: tuple[float, float] | None = None
    for _ in range(rounds):
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        result = percentiles(times)
        if best is None or result[1] < best[1]:
            best = result
    assert best is not None
    return best


def graphql(svc: Services, f: ConversationFilter) -> Callable[[], object]:
    async def execute() -> Any:
        variables = {"text": f.text, "status": f.status, "customerEmail": f.customer_email,
                     "groupId": f.group_ids[0] if f.group_ids else None}
        result = await schema.execute(GRAPHQL, variable_values={"filter": variables},
                                      context_value=Context(services=svc, principal=ADMIN))
        assert result.errors is None, result.errors
        return result.data

    return lambda: asyncio.run(execute())


def run_backend(backend: str, size: int, requests: int, rounds: int) -> list[list[object]]:
    out: list[list[object]] = []
    with fresh_database(backend) as url:
        svc = services(url)
        try:
            start = time.perf_counter()
            _, frequency = seed(svc, size)
            print(f"{backend}: seeded {size} conversations in {time.perf_counter() - start:.0f} s", flush=True)
            queries = svc.conversations
            for name, f in kinds(frequency, size):
                rows, more = queries.rows(f, 50, None)
                cursor = rows[-1]["sort_key"] if rows and more else None
                matches = queries.count(f)
                calls: list[tuple[str, Callable[[], object]]] = [
                    ("rows", lambda f=f: queries.rows(f, 50, None)),  # type: ignore[misc]
                    ("page 2", lambda f=f, cursor=cursor: queries.rows(f, 50, cursor)),  # type: ignore[misc]
                    ("count", lambda f=f: queries.count(f)),  # type: ignore[misc]
                    ("graphql", graphql(svc, f)),
                ]
                for label, call in calls:
                    p50, p99 = measure(call, requests if label != "count" else max(requests // 4, 20), rounds)
                    out.append([backend, name, label, matches, f"{p50:.1f}", f"{p99:.1f}"])
                    print("  ".join(str(v) for v in out[-1]), flush=True)
        finally:
            svc.close()
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    args = parser.parse_args(argv)
    rows: list[list[object]] = []
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        rows += run_backend(backend, args.size, args.requests, args.rounds)
    print()
    print(table(["backend", "query", "call", "matches", "p50 ms", "p99 ms"], rows))


if __name__ == "__main__":
    main()
