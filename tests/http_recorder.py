"""A small HTTP(S) server on loopback for tests: remembers every request it gets (path, query,
headers) and answers each path as told (a JSON body, a status, a delay, a redirect, an oversized
body). Standard library only, one thread per request, so a slow path does not hold up the others."""

from __future__ import annotations

import datetime
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # socketserver's 5 makes bursts of connections wait out SYN retries (1 s, 3 s)


@dataclass
class Behaviour:
    body: object = field(default_factory=list)  # bytes are sent as they are; anything else as JSON
    status: int = 200
    delay: float = 0.0  # seconds before the answer (cut short when the server stops)
    location: str | None = None  # sent as the Location header
    oversized: int = 0  # when set: a body of this many bytes instead of `body`
    declare_length: bool = True  # False: no Content-Length, the end of the body is the connection's end


@dataclass(frozen=True)
class Seen:
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case


class HttpRecorder:
    def __init__(self, host: str = "127.0.0.1", *, tls: tuple[str, str] | None = None) -> None:
        """`tls`: (certificate chain file, key file) to serve https instead of http."""
        self.routes: dict[str, Behaviour] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server((host, 0), self._handler())
        self._server.daemon_threads = True
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.host = host
        self.port = int(self._server.server_address[1])
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="http-recorder",
                                        daemon=True)

    def url(self, path: str, host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def answer(self, path: str, **behaviour: object) -> None:
        self.routes[path] = Behaviour(**behaviour)  # type: ignore[arg-type]

    def seen(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with recorder._lock:
                    recorder.requests.append(Seen(parts.path, parts.query, parse_qs(parts.query),
                                                  {k.lower(): v for k, v in self.headers.items()}))
                behaviour = recorder.routes.get(parts.path, Behaviour(body={"error": "no such path"}, status=404))
                if behaviour.delay and recorder._stopping.wait(behaviour.delay):
                    return
                body = behaviour.body if isinstance(behaviour.body, bytes) else json.dumps(behaviour.body).encode()
                if behaviour.oversized:
                    body = b"[" + b" " * (behaviour.oversized - 2) + b"]"
                self.send_response(behaviour.status)
                self.send_header("Content-Type", "application/json")
                if behaviour.location is not None:
                    self.send_header("Location", behaviour.location)
                if behaviour.declare_length:
                    self.send_header("Content-Length", str(len(body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                try:
                    for start in range(0, len(body), 65536):
                        self.wfile.write(body[start:start + 65536])
                except OSError:
                    pass  # the client stopped reading (as it should, past its size cap)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def write_certificates(directory: Path, name: str) -> tuple[str, str, str]:
    """A test CA and a server certificate for `name` signed by it: (CA file, chain file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "http-recorder test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, chain_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(ca_file), str(chain_file), str(key_file)
