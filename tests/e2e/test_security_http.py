"""HTTP-level hardening against the real `mailroom serve` (issue 8): the body limit counted as
bytes arrive (chunked or lying about their length), no API docs, no addresses in /metrics,
and a WebSocket upgrade that is refused cleanly instead of answering 500."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import Request
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from api.services import Services
from tests.dovecot import Dovecot
from tests.e2e.conftest import Server, free_port
from tests.e2e.intake_helpers import bind_imap_mailbox, senderless_mail, sync

LIMIT = 1_000_000  # api/main.py MAX_BODY
CHUNK = 64 * 1024
ADMIN_TOKEN = "security-admin-token-0123456789"


@pytest.fixture(scope="module", params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """HTTP framing does not depend on the engine: SQLite only (the module's fixtures follow)."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(start_server: Callable[..., Server], dovecot: Dovecot) -> Server:
    return start_server(MAILROOM_ADMIN_TOKEN=ADMIN_TOKEN, MAILROOM_EXTRA_CA_FILE=dovecot.ca_file,
                        MAILROOM_POLL_SECONDS="3600")


def graphql_body(padding: int) -> Iterator[bytes]:
    """A valid GraphQL request whose unused variable is `padding` bytes long, sent in chunks."""
    yield b'{"query": "{ __typename }", "variables": {"pad": "'
    left = padding
    while left > 0:
        size = min(CHUNK, left)
        yield b"a" * size
        left -= size
    yield b'"}}'


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def chunked_post(url: str, body: Iterator[bytes], **headers: str) -> httpx.Response:
    with httpx.Client(timeout=60.0) as client:
        return client.post(url, content=body, headers={"Content-Type": "application/json", **headers})


# ------------------------------------------------------------------------- body limit


def test_chunked_graphql_body_over_the_limit_is_413_and_not_buffered(server: Server) -> None:
    assert server.process is not None
    before = rss_kib(server.process.pid)

    response = chunked_post(f"{server.url}/graphql", graphql_body(40 * LIMIT), Authorization=f"Bearer {ADMIN_TOKEN}")

    assert response.status_code == 413, response.text[:200]
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    grown_mib = (rss_kib(server.process.pid) - before) / 1024
    assert grown_mib < 30, f"the server grew by {grown_mib:.0f} MiB for a refused body"
    assert server.client.get(f"{server.url}/healthz").status_code == 200  # still serving


def test_chunked_body_under_the_limit_is_served(server: Server) -> None:
    response = chunked_post(f"{server.url}/graphql", graphql_body(LIMIT - 4096),
                            Authorization=f"Bearer {ADMIN_TOKEN}")

    assert response.status_code == 200, response.text[:200]
    assert response.json()["data"] == {"__typename": "Query"}


def raw_request(port: int, head: str, body: bytes | Iterator[bytes]) -> bytes:
    """Send a hand-written request over a socket; the status line and headers of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        try:
            for part in [body] if isinstance(body, bytes) else body:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and stop reading before everything is sent
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return answer


def chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def test_small_content_length_with_a_chunked_body_over_the_limit_is_413(server: Server) -> None:
    """The headers lie: Content-Length says 40 bytes, the chunked body is 3 MB."""
    head = (f"POST /graphql HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {ADMIN_TOKEN}\n"
            "Content-Type: application/json\nContent-Length: 40\nTransfer-Encoding: chunked\n")

    answer = raw_request(server.port, head, chunked(graphql_body(3 * LIMIT)))

    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]


def test_large_content_length_is_413_before_the_body_is_sent(server: Server) -> None:
    head = (f"POST /graphql HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {ADMIN_TOKEN}\n"
            f"Content-Type: application/json\nContent-Length: {50 * LIMIT}\n")
    started = time.monotonic()

    answer = raw_request(server.port, head, b'{"query": "')  # and then nothing more

    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert time.monotonic() - started < 10


# An extra POST route on the real application, served on a real socket: the limit is the
# application's, not /graphql's.

@pytest.fixture
def app_with_upload_route(services: Services) -> Iterator[tuple[str, list[int]]]:
    app = create_app(services, run_workers=False)
    seen: list[int] = []

    @app.post("/upload-echo")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for part in request.stream():
            size += len(part)
        seen.append(size)
        return {"size": size}

    port = free_port()
    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not served.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served.started
    yield f"http://127.0.0.1:{port}", seen
    served.should_exit = True
    thread.join(10)


def test_any_post_route_stops_reading_a_chunked_body_at_the_limit(
        app_with_upload_route: tuple[str, list[int]]) -> None:
    url, seen = app_with_upload_route

    small = chunked_post(f"{url}/upload-echo", iter([b"x" * 1000] * 10))
    large = chunked_post(f"{url}/upload-echo", iter([b"x" * CHUNK] * (3 * LIMIT // CHUNK)))

    assert small.status_code == 200 and small.json() == {"size": 10_000}
    assert large.status_code == 413, large.text[:200]
    assert json.loads(large.text)["detail"].startswith("request body over")
    assert seen == [10_000]  # the route never saw the large one end


# ------------------------------------------------------------------- what is not served


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_documentation_pages_are_not_served(server: Server, path: str) -> None:
    response = server.client.get(f"{server.url}{path}")

    assert response.status_code == 404
    assert "swagger" not in response.text.lower() and "openapi" not in response.text.lower()


def test_metrics_label_mailboxes_by_id_never_by_address(server: Server, dovecot: Dovecot) -> None:
    box = bind_imap_mailbox(server, ADMIN_TOKEN, dovecot)
    dovecot.append(box.user, (f"From: carol@customer.example\r\nTo: {box.address}\r\nSubject: metrics\r\n"
                              "Message-ID: <metrics-1@customer.example>\r\n\r\nHello.\r\n").encode())
    dovecot.append(box.user, senderless_mail())
    assert sync(server, ADMIN_TOKEN, box.id)["userErrors"] == []

    response = server.client.get(f"{server.url}/metrics")  # no token: anyone who reaches the port

    assert response.status_code == 200
    assert box.address not in response.text
    assert box.address.split("@")[1] not in response.text
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    taken_in = {s.labels["mailbox_id"]: s.value for s in families["mailroom_messages_taken_in"].samples
                if s.name == "mailroom_messages_taken_in_total"}
    assert taken_in.get(box.id) == 1
    quarantined = {s.labels["mailbox_id"]: s.value for s in families["mailroom_messages_quarantined"].samples
                   if s.name == "mailroom_messages_quarantined_total"}
    assert quarantined.get(box.id) == 1


# ------------------------------------------------------------------------------- WebSocket


def websocket_refusal(url: str, **options: object) -> int:
    """Open a WebSocket with the real `websockets` client; the HTTP status of the refused handshake."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=10, **options) as ws:  # type: ignore[arg-type]
            ws.close()
    except InvalidStatus as refused:
        return int(refused.response.status_code)
    raise AssertionError("the WebSocket upgrade was accepted")


# graphql-transport-ws is served (subscriptions: tests/e2e/test_subscriptions.py); other subprotocols are not.
@pytest.mark.parametrize("subprotocols", [["graphql-ws"], None])
@pytest.mark.parametrize("token", [ADMIN_TOKEN, None])
def test_websocket_upgrade_is_refused_cleanly_before_accept(server: Server, subprotocols: list[str] | None,
                                                            token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    before = server.log().count("Traceback")

    status = websocket_refusal(f"ws://127.0.0.1:{server.port}/graphql", subprotocols=subprotocols,
                               additional_headers=headers)

    assert status == 403  # refused before accept; was 500 (the context had no request)
    assert server.log().count("Traceback") == before
    assert server.client.get(f"{server.url}/healthz").status_code == 200
