"""The sidebar of a conversation with 5 sources (2 of pushed records, 3 HTTP endpoints on a local
server), resolved as the API resolves it (api/sidebar.py): p50/p99 of one conversation's sidebar
(a new customer each time: no cache help), and a page of 50 conversations (one DataLoader batch):
its time and the HTTP requests it makes.

    .venv/bin/python -m bench.sidebar [--requests 200] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from pydantic import SecretStr

from adapters.settings import Settings
from api.bootstrap import bootstrap
from bench.common import BACKENDS, fresh_database, table
from domain.sidebar import MatchKey, SourceKind, SourceSpec
from tests.http_recorder import HttpRecorder

PAGE = 50


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(backend: str, requests: int, erp: HttpRecorder) -> list[object]:
    with fresh_database(backend) as url:
        settings = Settings(database_url=url, secret_key=SecretStr("bench-secret-key-0123456789"),
                            allow_private_hosts=True)
        services = bootstrap(settings, verify_login=lambda *args: None)
        try:
            app = services.app
            app.create_sidebar_source(SourceSpec("Orders", "order", SourceKind.RECORDS, None, MatchKey.CUSTOMER_EMAIL))
            app.create_sidebar_source(SourceSpec("Contracts", "contract", SourceKind.RECORDS, None,
                                                 MatchKey.EMAIL_DOMAIN, position=1))
            for i, path in enumerate(("/workorders", "/invoices", "/devices")):
                app.create_sidebar_source(SourceSpec(path[1:], path[1:], SourceKind.HTTP,
                                                     erp.url(path + "?email={customer_email}"),
                                                     MatchKey.CUSTOMER_EMAIL, position=2 + i))
            for i in range(1_000):
                app.upsert_record("order", f"O-{i}", f"Order {i}", f"c{i % 300}@d{i % 40}.example", None, None,
                                  {"total": i}, None)
                app.upsert_record("contract", f"C-{i}", f"Contract {i}", f"x{i}@d{i % 40}.example", None, None,
                                  {"level": "gold"}, None)
            services.projections.wait_for(services.projections.head(), timeout=120)
            resolver = services.sidebar

            async def one() -> list[float]:
                times = []
                for i in range(requests):
                    pair = (str(uuid.uuid4()), f"c{i % 300}-{uuid.uuid4().hex[:6]}@d{i % 40}.example")
                    started = time.perf_counter()
                    await resolver.resolve([pair])
                    times.append((time.perf_counter() - started) * 1000)
                return times

            times = asyncio.run(one())
            before = len(erp.seen())
            pairs = [(str(uuid.uuid4()), f"p{i}-{uuid.uuid4().hex[:6]}@d{i % 40}.example") for i in range(PAGE)]
            started = time.perf_counter()
            sections = asyncio.run(resolver.resolve(pairs))
            page_ms = (time.perf_counter() - started) * 1000
            made = len(erp.seen()) - before
            again_before = len(erp.seen())
            asyncio.run(resolver.resolve(pairs))  # the same page again within the cache's TTL
            again = len(erp.seen()) - again_before
            assert all(len(s) == 5 for s in sections)
            return [backend, requests, f"{statistics.median(times):.1f}", f"{_p(times, 0.99):.1f}",
                    PAGE, f"{page_ms:.0f}", made, again]
        finally:
            services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    args = parser.parse_args()
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    with HttpRecorder() as erp:
        for path in ("/workorders", "/invoices", "/devices"):
            erp.answer(path, body=[{"id": n, "title": f"{path[1:]} {n}", "state": "open"} for n in range(5)])
        rows = [run(backend, args.requests, erp) for backend in backends]
    print("sidebar: 5 sources (2 pushed-records, 3 HTTP on loopback), 1,000 records each pushed; ms")
    print(table(["backend", "sidebars", "p50 one", "p99 one", "page", "page ms", "HTTP requests", "again (cached)"],
                rows))


if __name__ == "__main__":
    main()
