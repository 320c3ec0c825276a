"""The built-in provider table (providers.json, loaded once): well-known mail providers matched by
the address's domain or by the domain's MX hosts (Google Workspace, Microsoft 365... on the
customer's own domain). Candidates come with source "provider-table"."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from adapters.discovery.model import Candidate
from domain.values import MailProtocol, TransportSecurity


@dataclass(frozen=True)
class Server:
    protocol: MailProtocol | None  # None: outgoing (SMTP submission)
    host: str
    port: int
    security: TransportSecurity


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    domains: tuple[str, ...]
    mx: tuple[str, ...]  # MX host suffixes (label-aligned)
    usernames: tuple[str, ...]  # login name forms to try, in order: "address", "localpart"
    incoming: tuple[Server, ...]
    outgoing: tuple[Server, ...]

    def candidates(self, address: str = "") -> list[Candidate]:
        """Incoming then outgoing, IMAP before POP3, as listed. Usernames from `address` in the
        provider's forms; no address: none (the caller fills them in)."""
        usernames = _usernames(address, self.usernames)
        return [
            Candidate("provider-table", "incoming" if s.protocol else "outgoing", s.protocol, s.host, s.port,
                      s.security, usernames)
            for s in (*self.incoming, *self.outgoing)
        ]


def _usernames(address: str, forms: tuple[str, ...]) -> tuple[str, ...]:
    if not address:
        return ()
    local = address.rpartition("@")[0]
    names = (local if form == "localpart" else address for form in forms)
    return tuple(dict.fromkeys(name for name in names if name))


def _server(raw: dict[str, Any], incoming: bool) -> Server:
    protocol = MailProtocol(raw["protocol"]) if incoming else None
    security = TransportSecurity(raw["security"])
    if security is TransportSecurity.NONE:
        raise ValueError(f"providers.json proposes plaintext for {raw['host']}")
    return Server(protocol, str(raw["host"]).lower(), int(raw["port"]), security)


@cache
def table() -> tuple[Provider, ...]:
    """The providers, in the file's order (loaded once)."""
    text = resources.files("adapters.discovery").joinpath("providers.json").read_text(encoding="utf-8")
    providers = []
    for raw in json.loads(text)["providers"]:
        providers.append(Provider(
            id=raw["id"],
            name=raw["name"],
            domains=tuple(d.lower() for d in raw.get("domains", ())),
            mx=tuple(m.lower().strip(".") for m in raw.get("mx", ())),
            usernames=tuple(raw.get("usernames", ("address",))),
            incoming=tuple(_server(s, True) for s in raw.get("incoming", ())),
            outgoing=tuple(_server(s, False) for s in raw.get("outgoing", ())),
        ))
    return tuple(providers)


def _normal(name: str) -> str:
    return name.strip().lower().rstrip(".")


def match_domain(domain: str) -> Provider | None:
    domain = _normal(domain)
    return next((p for p in table() if domain in p.domains), None)


def match_mx(mx_hosts: list[str] | tuple[str, ...]) -> Provider | None:
    """The provider of the first MX host (by preference) that matches one; within one host the
    longest suffix wins (AOL's mx-aol.mail.gm0.yahoodns.net before Yahoo's yahoodns.net)."""
    for host in mx_hosts:
        host = _normal(host)
        best: tuple[int, Provider] | None = None
        for provider in table():
            for suffix in provider.mx:
                if (host == suffix or host.endswith("." + suffix)) and (best is None or len(suffix) > best[0]):
                    best = (len(suffix), provider)
        if best is not None:
            return best[1]
    return None


def by_domain(domain: str, *, address: str = "") -> list[Candidate]:
    """Candidates of the provider serving `domain` (an address's domain part), or []."""
    provider = match_domain(domain)
    return provider.candidates(address) if provider else []


def by_mx(mx_hosts: list[str] | tuple[str, ...], *, address: str = "") -> list[Candidate]:
    """Candidates of the provider whose MX hosts these are, or []."""
    provider = match_mx(mx_hosts)
    return provider.candidates(address) if provider else []
