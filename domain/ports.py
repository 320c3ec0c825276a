"""Ports: what the commands need from the outside world, as small abstract types."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from domain.values import MailProtocol, ServerSettings


class LoginRefused(Exception):
    """The mail server could not be logged in to; code is e.g. AUTH_FAILED, UNREACHABLE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Logs in with the settings and password, or raises LoginRefused.
LoginVerifier = Callable[[MailProtocol, ServerSettings, str], None]


@dataclass(frozen=True)
class Tried:
    """One incoming server tried while discovering settings, as the admin sees it."""

    source: str  # provider-table, autoconfig, srv, mx, guess
    protocol: MailProtocol
    settings: ServerSettings
    outcome: str  # ok, no-such-host, unreachable, timeout, tls-failed, auth-failed, not-offered, ...


@dataclass(frozen=True)
class Discovery:
    """What discovery found for an address and password: verified incoming settings (logged in),
    outgoing SMTP settings (AUTH accepted) if any, and every incoming server tried."""

    protocol: MailProtocol | None
    incoming: ServerSettings | None
    outgoing: ServerSettings | None
    tried: list[Tried] = field(default_factory=list)
    auth_failed: bool = False  # a server answered and refused the password


# Finds and verifies a mailbox's servers from its address and password (DESIGN 6).
Discoverer = Callable[[str, str], Discovery]


class SecretStore(ABC):
    """Keeps secrets (mailbox passwords) encrypted, outside the event log."""

    @abstractmethod
    def put(self, plaintext: str) -> UUID: ...

    @abstractmethod
    def get(self, ref: UUID) -> str: ...


class References(ABC):
    """Read-side answers the write side needs before deleting something."""

    @abstractmethod
    def rules_using_mailbox(self, mailbox_id: UUID) -> list[str]: ...

    @abstractmethod
    def rules_using_group(self, group_id: UUID) -> list[str]: ...


class EventIndex(ABC):
    """Answers from the event store in bulk which aggregates exist."""

    @abstractmethod
    def existing(self, ids: set[UUID]) -> set[UUID]: ...
