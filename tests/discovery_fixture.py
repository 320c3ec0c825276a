"""Session fixtures for the settings-discovery tests: `dns_server` (a real DNS server on loopback,
tests/dns_server.py) and `autoconfig_server` (an HTTPS server on 127.0.0.1 serving autoconfig
XML, redirects and large bodies, plus a "trap" listener on 127.0.0.2 that only counts the
connections it gets). Both are shared by the session: call `.reset()` at the start of a test."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dns_server import DnsServer
from tests.dovecot import _write_tls

HOST = "127.0.0.1"
TRAP_HOST = "127.0.0.2"  # loopback too (all of 127/8 is), but not the server's address


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    send_length: bool = True  # False: no Content-Length, the body ends when the connection does


class AutoconfigServer:
    """HTTPS (certificate for 127.0.0.1 and localhost, signed by `ca_file`) on `port`. Routes are
    keyed by (Host header without port, or "*" for any, path without query)."""

    def __init__(self, tls_dir: Path) -> None:
        tls_dir.mkdir(parents=True, exist_ok=True)
        _write_tls(tls_dir)
        self.ca_file = str(tls_dir / "ca.pem")
        self.lock = threading.Lock()
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str]] = []  # (Host header, path with query)
        self.connections = 0
        self.trap_connections = 0
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls_dir / "cert.pem"), str(tls_dir / "key.pem"))
        self._httpd = _Server((HOST, 0), _Handler, self, context)
        self.port = int(self._httpd.server_address[1])
        self._trap = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._trap.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._trap.bind((TRAP_HOST, self.port))  # the same port: a redirect that only changes the host lands here
        self._trap.listen(16)
        self.trap_port = self.port
        self._threads = [threading.Thread(target=self._httpd.serve_forever, daemon=True),
                         threading.Thread(target=self._trap_loop, daemon=True)]
        for thread in self._threads:
            thread.start()

    def client_context(self, *, check_hostname: bool = True) -> ssl.SSLContext:
        """Trusts the test CA; check_hostname=False for made-up names served from 127.0.0.1."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.check_hostname = check_hostname
        return context

    def reset(self) -> None:
        with self.lock:
            self.routes.clear()
            self.requests.clear()
            self.connections = 0
            self.trap_connections = 0

    def serve(self, path: str, body: bytes | str, *, host: str = "*", status: int = 200,
              content_type: str = "application/xml", send_length: bool = True) -> None:
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.routes[(host.lower(), path)] = Route(status, data, (("Content-Type", content_type),), send_length)

    def redirect(self, path: str, location: str, *, host: str = "*", status: int = 302) -> None:
        with self.lock:
            self.routes[(host.lower(), path)] = Route(status, b"", (("Location", location),))

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._trap.close()

    def _route(self, host: str, path: str) -> Route | None:
        with self.lock:
            return self.routes.get((host.lower(), path)) or self.routes.get(("*", path))

    def _trap_loop(self) -> None:
        while True:
            try:
                connection, _ = self._trap.accept()
            except OSError:
                return
            with self.lock:
                self.trap_connections += 1
            connection.close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, owner: AutoconfigServer,
                 context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.owner = owner
        self.context = context

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        with self.owner.lock:
            self.owner.connections += 1
        sock.settimeout(5)
        return self.context.wrap_socket(sock, server_side=True), address


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        host = _host_of(self.headers.get("Host") or "")
        with owner.lock:
            owner.requests.append((host, self.path))
        route = owner._route(host, self.path.split("?", 1)[0])
        if route is None:
            route = Route(404, b"not found")
        self.send_response(route.status)
        for name, value in route.headers:
            self.send_header(name, value)
        if route.send_length:
            self.send_header("Content-Length", str(len(route.body)))
        else:
            self.close_connection = True
        self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):  # the client stopped reading (too large): fine
            self.wfile.write(route.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _host_of(header: str) -> str:
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    """A DNS server on 127.0.0.1 (UDP and TCP, `port`; `spec` as MAILROOM_DNS_SERVERS says it)."""
    server = DnsServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def autoconfig_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AutoconfigServer]:
    server = AutoconfigServer(tmp_path_factory.mktemp("autoconfig-tls"))
    try:
        yield server
    finally:
        server.close()
