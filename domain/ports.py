"""Ports: what the commands need from the outside world, as small abstract types."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
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
