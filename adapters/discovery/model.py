"""What settings discovery works with: candidate servers (from the provider table, autoconfig,
SRV records, MX and guesses) and the report of each one tried."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from domain.values import MailProtocol, ServerSettings, TransportSecurity

Role = Literal["incoming", "outgoing"]
Source = Literal["provider-table", "autoconfig", "srv", "mx", "guess", "given"]
# How an attempt ended: "ok", or why not. "not-offered": a source said the service is not
# provided (SRV target "."); "private-address": the host resolves to a loopback, private,
# link-local or otherwise non-public address and MAILROOM_ALLOW_PRIVATE_HOSTS is not set;
# "skipped": not tried because an earlier candidate already worked or the deadline passed.
Outcome = Literal["ok", "no-such-host", "unreachable", "timeout", "tls-failed", "auth-failed", "not-offered",
                  "private-address", "protocol-error", "skipped"]


@dataclass(frozen=True)
class Candidate:
    """A server a source proposes. `protocol` is IMAP or POP3 for incoming; for outgoing (SMTP
    submission) it is None. `usernames`: the login names to try, in order."""

    source: Source
    role: Role
    protocol: MailProtocol | None
    host: str
    port: int
    security: TransportSecurity
    usernames: tuple[str, ...] = ()
    refused: Outcome | None = None  # set when the source itself rules it out (not-offered, private-address)

    def settings(self, username: str) -> ServerSettings:
        return ServerSettings(self.host, self.port, self.security, username)


@dataclass(frozen=True)
class AttemptReport:
    """One candidate as tried (or ruled out), for the admin (`DiscoveryAttempt`)."""

    source: Source
    role: Role
    protocol: MailProtocol | None
    host: str
    port: int
    security: TransportSecurity
    outcome: Outcome
    detail: str = ""  # a short reason, never a password


@dataclass(frozen=True)
class Verified:
    """A candidate that logged in (incoming) or accepted AUTH (outgoing), with the username that worked."""

    candidate: Candidate
    username: str

    @property
    def settings(self) -> ServerSettings:
        return self.candidate.settings(self.username)


@dataclass
class ProbeResult:
    incoming: Verified | None = None
    outgoing: Verified | None = None
    attempts: list[AttemptReport] = field(default_factory=list)

    @property
    def auth_failed(self) -> bool:
        """A server was found and answered, but refused the password (not a settings problem)."""
        return self.incoming is None and any(
            a.role == "incoming" and a.outcome == "auth-failed" for a in self.attempts)
