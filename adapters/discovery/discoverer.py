"""Settings discovery as the domain asks for it (domain.ports.Discoverer): candidates from every
source (adapters/discovery/sources.py), verified by real logins in parallel (probe.py), within
one deadline so that bindMailbox answers in under 30 seconds even when every host is a black hole."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from adapters.discovery.dns import Resolver, parse_servers
from adapters.discovery.model import AttemptReport, Candidate, ProbeResult
from adapters.discovery.probe import verify_candidates
from domain.ports import Discovery, Tried
from domain.values import MailProtocol, ServerSettings

log = logging.getLogger("mailroom.discovery")
DEADLINE = 25.0  # seconds for the whole discovery: the answer (with the bind) comes within 30
LOOKUP_SHARE = 0.4  # of it, at most, for finding candidates (DNS, autoconfig); the rest for logins
ATTEMPT_TIMEOUT = 8.0


@dataclass
class SettingsDiscovery:
    dns_servers: str | None
    allow_private: bool
    extra_ca_file: str | None
    deadline: float = DEADLINE
    attempt_timeout: float = ATTEMPT_TIMEOUT
    autoconfig_scheme: str = "https"
    autoconfig_port: int | None = None  # tests point autoconfig at a loopback server's port

    def __call__(self, address: str, password: str) -> Discovery:
        started = time.monotonic()
        end = started + self.deadline
        resolver = Resolver(parse_servers(self.dns_servers) or None)
        candidates = self.candidates(address, resolver, started + self.deadline * LOOKUP_SHARE)
        result = verify_candidates(candidates, password, resolve=resolver, allow_private=self.allow_private,
                                   extra_ca_file=self.extra_ca_file, attempt_timeout=self.attempt_timeout, deadline=end)
        log.info("discovery for a mailbox on %s: %d candidates, %s in %.1f s", address.rpartition("@")[2],
                 len(candidates), "found" if result.incoming else "nothing found", time.monotonic() - started)
        return discovery_of(result)

    def candidates(self, address: str, resolver: Resolver, deadline: float) -> list[Candidate]:
        from adapters.discovery.autoconfig import Autoconfig
        from adapters.discovery.sources import find_candidates

        autoconfig = Autoconfig(resolver=resolver, allow_private=self.allow_private,
                                extra_ca_file=self.extra_ca_file, scheme=self.autoconfig_scheme,
                                port=self.autoconfig_port)
        found: list[Candidate] = find_candidates(address, resolver=resolver, autoconfig=autoconfig,
                                                 allow_private=self.allow_private, deadline=deadline)
        return found


def _tried(report: AttemptReport, username: str) -> Tried | None:
    if report.role != "incoming" or report.protocol is None:
        return None  # DiscoveryAttempt names IMAP or POP3; SMTP attempts are not shown there
    return Tried(report.source, report.protocol, ServerSettings(report.host, report.port, report.security, username),
                 report.outcome)


def discovery_of(result: ProbeResult) -> Discovery:
    tried = [t for t in (_tried(a, "") for a in result.attempts) if t is not None]
    incoming = result.incoming
    protocol: MailProtocol | None = incoming.candidate.protocol if incoming is not None else None
    return Discovery(protocol, incoming.settings if incoming is not None else None,
                     result.outgoing.settings if result.outgoing is not None else None, tried,
                     auth_failed=result.auth_failed)
