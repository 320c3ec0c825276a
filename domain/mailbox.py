"""The Mailbox aggregate: a bound support mailbox. Holds only a reference to its password."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.values import MailProtocol, ServerSettings

DEFAULT_SUBJECT_TEMPLATE = "Re: {subject}"
SUBJECT_PLACEHOLDERS = ("subject", "mailbox", "conversation_ref")
DEFAULT_FOLDERS = ("INBOX",)


class Mailbox(Aggregate, created_event_name="Bound"):
    TOPIC = "mailroom:Mailbox"

    class Created(Aggregate.Created):
        """Base of the creation event; only Bound is ever recorded."""

        TOPIC = "mailroom:Mailbox.Created"

    class Bound(Created):
        TOPIC = "mailroom:Mailbox.Bound"
        address: str
        display_name: str
        protocol: MailProtocol
        incoming: ServerSettings
        outgoing: ServerSettings | None
        secret_ref: UUID

    def __init__(
        self,
        address: str,
        display_name: str,
        protocol: MailProtocol,
        incoming: ServerSettings,
        outgoing: ServerSettings | None,
        secret_ref: UUID,
    ) -> None:
        self.address = address
        self.display_name = display_name
        self.protocol = protocol
        self.incoming = incoming
        self.outgoing = outgoing
        self.secret_ref = secret_ref
        self.subject_template = DEFAULT_SUBJECT_TEMPLATE
        self.footer = ""
        self.enabled = True
        self.deleted = False
        self.failing = False
        self.last_error: str | None = None
        self.last_synced_at: datetime | None = None
        self.folders: list[str] = list(DEFAULT_FOLDERS)

    @event("SettingsChanged", topic="mailroom:Mailbox.SettingsChanged")
    def change_settings(
        self,
        display_name: str,
        protocol: MailProtocol,
        incoming: ServerSettings,
        outgoing: ServerSettings | None,
    ) -> None:
        self.display_name = display_name
        self.protocol = protocol
        self.incoming = incoming
        self.outgoing = outgoing

    @event("PasswordChanged", topic="mailroom:Mailbox.PasswordChanged")
    def change_password(self, secret_ref: UUID) -> None:
        self.secret_ref = secret_ref

    @event("ReplySettingsChanged", topic="mailroom:Mailbox.ReplySettingsChanged")
    def set_reply_settings(self, subject_template: str, footer: str) -> None:
        self.subject_template = subject_template
        self.footer = footer

    @event("Disabled", topic="mailroom:Mailbox.Disabled")
    def disable(self) -> None:
        self.enabled = False

    @event("Enabled", topic="mailroom:Mailbox.Enabled")
    def enable(self) -> None:
        self.enabled = True

    @event("FoldersChanged", topic="mailroom:Mailbox.FoldersChanged")
    def change_folders(self, folders: list[str]) -> None:
        self.folders = list(folders)

    @event("SyncFailed", topic="mailroom:Mailbox.SyncFailed")
    def sync_failed(self, error: str) -> None:
        """Recorded when the mailbox turns FAILING, not on every failed poll."""
        self.failing = True
        self.last_error = error

    @event("SyncRecovered", topic="mailroom:Mailbox.SyncRecovered")
    def sync_recovered(self) -> None:
        self.failing = False
        self.last_error = None

    @event("Deleted", topic="mailroom:Mailbox.Deleted")
    def delete(self) -> None:
        self.deleted = True

    @property
    def status(self) -> str:
        if not self.enabled:
            return "DISABLED"
        return "FAILING" if self.failing else "CONNECTED"
