"""The HTTP sidebar fetcher against a real HTTP server on loopback (tests/http_recorder.py).

Loopback is not a public address, so most tests allow private hosts. The tests of the refusal
itself keep the real address check and make it honest this way:
- a URL on 127.0.0.1 (or a name that resolves there) with private hosts not allowed: refused, and
  the server there saw no request at all;
- for a redirect, the first hop has to reach a server that counts as public. That server listens
  on 127.0.0.2, and the check (`is_public`, looked up by the fetcher at call time) is wrapped so
  that exactly 127.0.0.2 counts as public, standing in for "some server on the internet"; every
  other address, 127.0.0.1 included, goes through the real check unchanged. The name the source
  uses, vendor.test, resolves (injected resolver) to 127.0.0.2, so the test also shows the request
  going to the checked address with the name in the Host header. The redirect then points at a
  second server on 127.0.0.1, which must see nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import adapters.sidebar_http as sidebar_http
from adapters.discovery.addresses import is_public as real_is_public
from adapters.sidebar_http import FetchedRecord, SidebarFetcher, SourceError, fill_template
from tests.http_recorder import HttpRecorder, write_certificates

STAND_IN_PUBLIC = "127.0.0.2"


@pytest.fixture
def server() -> Iterator[HttpRecorder]:
    with HttpRecorder() as recorder:
        yield recorder


@pytest.fixture
def public_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpRecorder]:
    """A server on 127.0.0.2 that the address check counts as public (that one address only)."""
    monkeypatch.setattr(sidebar_http, "is_public", lambda ip: ip == STAND_IN_PUBLIC or real_is_public(ip))
    with HttpRecorder(STAND_IN_PUBLIC) as recorder:
        yield recorder


def run_fetch(fetcher: SidebarFetcher, url: str, auth: tuple[str, str] | None = None) -> list[FetchedRecord]:
    async def go() -> list[FetchedRecord]:
        try:
            return await fetcher.fetch(url, auth)
        finally:
            await fetcher.aclose()
    return asyncio.run(go())


def fetch_error(fetcher: SidebarFetcher, url: str, auth: tuple[str, str] | None = None) -> str:
    with pytest.raises(SourceError) as caught:
        run_fetch(fetcher, url, auth)
    return caught.value.message


def lenient(**options: object) -> SidebarFetcher:
    return SidebarFetcher(allow_private=True, **options)  # type: ignore[arg-type]


def test_placeholder_arrives_url_encoded_and_intact(server: HttpRecorder) -> None:
    server.answer("/orders", body=[])
    url = fill_template(server.url("/orders") + "?email={customer_email}&d={email_domain}",
                        {"customer_email": "a+b@acme.example", "email_domain": "acme.example"})
    assert url is not None
    assert run_fetch(lenient(), url) == []
    [seen] = server.seen("/orders")
    assert seen.raw_query == "email=a%2Bb%40acme.example&d=acme.example"
    assert seen.query["email"] == ["a+b@acme.example"]


def test_array_and_records_object_forms(server: HttpRecorder) -> None:
    items = [{"id": 17, "title": "Order 17", "url": "https://erp.example/o/17", "total": 12.5, "lines": [1, 2]},
             {"id": "B-2", "title": "Second", "url": "javascript:alert(1)"},
             "not an object", {"title": "no id"}]
    server.answer("/array", body=items)
    server.answer("/object", body={"records": items, "next": None})
    fetcher = lenient()
    expected = [FetchedRecord("17", "Order 17", "https://erp.example/o/17", {"total": 12.5, "lines": [1, 2]}),
                FetchedRecord("B-2", "Second", None, {})]
    assert run_fetch(fetcher, server.url("/array")) == expected
    assert run_fetch(fetcher, server.url("/object")) == expected


def test_at_most_100_records(server: HttpRecorder) -> None:
    server.answer("/many", body=[{"id": i, "title": f"r{i}"} for i in range(250)])
    records = run_fetch(lenient(), server.url("/many"))
    assert [r.external_id for r in records] == [str(i) for i in range(100)]


@pytest.mark.parametrize(("behaviour", "words"), [
    ({"body": b"[{not json"}, "not valid JSON"),
    ({"body": {"rows": []}}, "neither a JSON array"),
    ({"body": [], "status": 500}, "HTTP 500"),
    ({"body": [], "status": 404}, "HTTP 404"),
    ({"oversized": 2_000_000}, "larger than 1,000,000 bytes"),
    ({"oversized": 2_000_000, "declare_length": False}, "larger than 1,000,000 bytes"),
])
def test_failures_are_the_sections_error(server: HttpRecorder, behaviour: dict[str, object], words: str) -> None:
    server.answer("/x", **behaviour)
    assert words in fetch_error(lenient(), server.url("/x"))


def test_slow_source_times_out_while_the_others_still_show(server: HttpRecorder) -> None:
    server.answer("/slow", delay=5.0, body=[{"id": 1, "title": "late"}])
    server.answer("/fast", body=[{"id": 2, "title": "on time"}])
    fetcher = lenient()

    async def go() -> tuple[float, list[list[FetchedRecord] | SourceError]]:
        started = time.monotonic()
        answers = await fetcher.fetch_all([(server.url("/slow"), None), (server.url("/fast"), None)])
        elapsed = time.monotonic() - started
        await fetcher.aclose()
        return elapsed, answers

    elapsed, (slow, fast) = asyncio.run(go())
    assert isinstance(slow, SourceError) and "did not answer within 3 s" in slow.message
    assert fast == [FetchedRecord("2", "on time", None, {})]
    assert 2.9 <= elapsed < 3.4  # the slow one's error within ~3.2 s (some slack for a busy machine); under 4 s


def test_ten_agents_one_request_and_the_answer_kept(server: HttpRecorder) -> None:
    server.answer("/one", delay=0.2, body=[{"id": 1, "title": "shared"}])
    fetcher = lenient()
    url = server.url("/one")

    async def go() -> list[list[FetchedRecord]]:
        first = await asyncio.gather(*(fetcher.fetch(url) for _ in range(10)))
        second = await asyncio.gather(*(fetcher.fetch(url) for _ in range(10)))  # within the TTL
        await fetcher.aclose()
        return [*first, *second]

    answers = asyncio.run(go())
    assert all(a == [FetchedRecord("1", "shared", None, {})] for a in answers)
    assert len(server.seen("/one")) == 1
    assert fetcher.requests_made == 1


def test_errors_are_kept_too_and_everything_expires(server: HttpRecorder) -> None:
    server.answer("/broken", status=500)
    fetcher = lenient(ttl=0.3)
    for _ in range(3):
        fetch_error(fetcher, server.url("/broken"))
    assert len(server.seen("/broken")) == 1
    time.sleep(0.4)
    fetch_error(fetcher, server.url("/broken"))
    assert len(server.seen("/broken")) == 2


def test_the_cache_is_shared_by_event_loops_in_other_threads(server: HttpRecorder) -> None:
    server.answer("/shared", delay=0.1, body=[{"id": 1, "title": "x"}])
    fetcher = lenient()
    run_fetch(fetcher, server.url("/shared"))
    results: list[list[FetchedRecord]] = []
    threads = [threading.Thread(target=lambda: results.append(run_fetch(fetcher, server.url("/shared"))))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(server.seen("/shared")) == 1


def test_auth_header_reaches_the_server_but_no_log(server: HttpRecorder, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-token-0123456789"
    server.answer("/private", body=[{"id": 1, "title": "x"}])
    server.answer("/failing", status=503)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    fetcher = lenient()
    run_fetch(fetcher, server.url("/private"), ("X-Api-Key", secret))
    fetch_error(fetcher, server.url("/failing"), ("Authorization", f"Bearer {secret}"))
    assert server.seen("/private")[0].headers["x-api-key"] == secret
    assert server.seen("/failing")[0].headers["authorization"] == f"Bearer {secret}"
    assert caplog.records  # something was logged, just not the secret
    assert secret not in caplog.text
    # Another header value is another cache entry (the key holds a hash of it, never the value).
    run_fetch(fetcher, server.url("/private"), ("X-Api-Key", "another"))
    assert len(server.seen("/private")) == 2
    assert not any(secret in key for key in fetcher._cache)


def test_loopback_refused_when_private_hosts_are_not_allowed(server: HttpRecorder) -> None:
    strict = SidebarFetcher(allow_private=False, resolve=lambda name: {"inside.test": ["127.0.0.1"],
                                                                       "mixed.test": ["93.184.215.14", "10.0.0.7"],
                                                                       }[name])
    assert fetch_error(strict, server.url("/x")) == "refused: 127.0.0.1 is not a public address"
    assert "not a public address" in fetch_error(strict, server.url("/x", host="inside.test"))
    assert "not a public address" in fetch_error(strict, "http://mixed.test/x")  # any one address refuses
    assert "not a public address" in fetch_error(strict, f"http://[::ffff:127.0.0.1]:{server.port}/x")
    assert server.seen() == []
    assert strict.requests_made == 0


def test_redirect_to_loopback_refused(public_server: HttpRecorder) -> None:
    with HttpRecorder("127.0.0.1") as inside:
        inside.answer("/secret", body=[{"id": 1, "title": "internal"}])
        public_server.answer("/hop", status=302, location=inside.url("/secret"))
        public_server.answer("/hop-by-name", status=307, location=inside.url("/secret", host="inside.test"))
        names = {"vendor.test": [STAND_IN_PUBLIC], "inside.test": ["127.0.0.1"]}
        strict = SidebarFetcher(allow_private=False, resolve=names.__getitem__)

        assert "not a public address" in fetch_error(strict, public_server.url("/hop", host="vendor.test"))
        assert "not a public address" in fetch_error(strict, public_server.url("/hop-by-name", host="vendor.test"))
        assert inside.seen() == []  # no request reached 127.0.0.1
        [hop, _] = public_server.seen()
        assert hop.headers["host"] == f"vendor.test:{public_server.port}"


def test_redirects_followed_three_times_and_auth_kept_on_its_origin(public_server: HttpRecorder) -> None:
    names = {"vendor.test": [STAND_IN_PUBLIC], "other.test": [STAND_IN_PUBLIC]}
    strict = SidebarFetcher(allow_private=False, resolve=names.__getitem__)
    public_server.answer("/a", status=301, location="/b")
    public_server.answer("/b", status=302, location=public_server.url("/c", host="other.test"))
    public_server.answer("/c", status=303, location="/data")
    public_server.answer("/data", body=[{"id": 1, "title": "found"}])
    public_server.answer("/loop", status=302, location="/loop")
    records = run_fetch(strict, public_server.url("/a", host="vendor.test"), ("X-Api-Key", "k"))
    assert records == [FetchedRecord("1", "found", None, {})]
    keys = [(r.path, r.headers.get("x-api-key")) for r in public_server.seen()]
    assert keys == [("/a", "k"), ("/b", "k"), ("/c", None), ("/data", None)]  # not sent to other.test
    assert "more than 3 redirects" in fetch_error(strict, public_server.url("/loop", host="vendor.test"))
    assert len(public_server.seen("/loop")) == 4


def test_only_http_and_https(server: HttpRecorder) -> None:
    assert "only http://" in fetch_error(lenient(), "ftp://example.com/x")
    assert "only http://" in fetch_error(lenient(), "")
    server.answer("/to-file", status=302, location="file:///etc/passwd")
    assert "only http://" in fetch_error(lenient(), server.url("/to-file"))


def test_tls_verified_against_the_name_while_connecting_to_the_checked_address(tmp_path: Path) -> None:
    ca_file, chain, key = write_certificates(tmp_path, "erp.test")
    with HttpRecorder(tls=(chain, key)) as server:
        server.answer("/orders", body=[{"id": 1, "title": "over TLS"}])
        names = {"erp.test": ["127.0.0.1"], "wrong.test": ["127.0.0.1"]}
        fetcher = lenient(extra_ca_file=ca_file, resolve=names.__getitem__)
        assert run_fetch(fetcher, server.url("/orders", host="erp.test"))[0].title == "over TLS"
        assert server.seen("/orders")[0].headers["host"] == f"erp.test:{server.port}"
        # The same server under a name its certificate does not carry; and without our CA.
        assert "TLS certificate not accepted" in fetch_error(fetcher, server.url("/orders", host="wrong.test"))
        no_ca = lenient(resolve=names.__getitem__)
        assert "TLS certificate not accepted" in fetch_error(no_ca, server.url("/orders", host="erp.test"))
        assert len(server.seen("/orders")) == 1


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "::1", "::",
                                     "::ffff:127.0.0.1", "::ffff:169.254.169.254", "fe80::1", "fd00::1", "ff02::1"])
def test_every_kind_of_non_public_address_refused_before_any_connection(address: str) -> None:
    strict = SidebarFetcher(allow_private=False, resolve=lambda name: ["93.184.215.14", address])
    assert fetch_error(strict, "https://erp.example/orders") == "refused: erp.example is not a public address"
    assert strict.requests_made == 0
