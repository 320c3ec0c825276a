"""A real DNS server on loopback for the settings-discovery tests (dnslib, UDP and TCP on one free
port). Records are added per test; unknown names answer NXDOMAIN; a name in `black_holes` (or under it)
never gets an answer (the query is dropped), like a server that does not respond."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict

from dnslib import AAAA, MX, QTYPE, RCODE, RR, SRV, A, DNSLabel, DNSRecord
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

HOST = "127.0.0.1"


class _Records(BaseResolver):  # type: ignore[misc]
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        qname = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE[request.q.qtype]
        with self.server.lock:
            self.server.queries.append((qname, qtype))
            if any(qname == b or qname.endswith("." + b) for b in self.server.black_holes):
                raise DNSError("black hole: no answer")  # dnslib's handler then sends nothing
            known = qname in self.server.records
            records = list(self.server.records.get(qname, {}).get(qtype, []))
        reply = request.reply()
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        for rdata in records:
            reply.add_answer(RR(DNSLabel(qname + "."), QTYPE.reverse[qtype], rdata=rdata, ttl=60))
        return reply


class DnsServer:
    """`spec` is what MAILROOM_DNS_SERVERS would say ("127.0.0.1:PORT")."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, dict[str, list[object]]] = defaultdict(lambda: defaultdict(list))
        self.black_holes: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self.port = 0
        self._servers: list[DNSServer] = []

    @property
    def spec(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        resolver = _Records(self)
        logger = DNSLogger(logf=lambda _: None)  # quiet
        for _attempt in range(20):
            port = _free_port()
            try:
                udp = DNSServer(resolver, port=port, address=HOST, logger=logger)
                tcp = DNSServer(resolver, port=port, address=HOST, tcp=True, logger=logger)
            except OSError:
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                server.start_thread()
            return
        raise RuntimeError("no free port for the test DNS server")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    # -- records -----------------------------------------------------------------------------

    def clear(self) -> None:
        with self.lock:
            self.records.clear()
            self.black_holes.clear()
            self.queries.clear()

    def _add(self, name: str, qtype: str, rdata: object) -> None:
        with self.lock:
            self.records[name.lower().rstrip(".")][qtype].append(rdata)

    def exists(self, name: str) -> None:
        """The name exists but has no records (NOERROR, no answer)."""
        with self.lock:
            self.records.setdefault(name.lower().rstrip("."), defaultdict(list))

    def a(self, name: str, *addresses: str) -> None:
        for address in addresses:
            self._add(name, "A", A(address))

    def aaaa(self, name: str, *addresses: str) -> None:
        for address in addresses:
            self._add(name, "AAAA", AAAA(address))

    def mx(self, name: str, host: str, preference: int = 10) -> None:
        self._add(name, "MX", MX(host.rstrip(".") + ".", preference))

    def srv(self, name: str, target: str, port: int, priority: int = 0, weight: int = 0) -> None:
        """`target` "." means not offered (RFC 2782)."""
        label = "." if target == "." else target.rstrip(".") + "."
        self._add(name, "SRV", SRV(priority, weight, port, label))

    def black_hole(self, name: str) -> None:
        """Queries for `name` and every name under it are dropped (never answered)."""
        with self.lock:
            self.black_holes.add(name.lower().rstrip("."))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])
