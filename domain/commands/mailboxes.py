"""Binding and configuring mailboxes. Every connection change is verified by a real login."""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from uuid import UUID

from domain.claims import Claim
from domain.commands.base import KEEP, Base, Conflict, Keep, Written, retrying
from domain.errors import Collector, Problem, Rejected, invalid
from domain.mailbox import DEFAULT_SUBJECT_TEMPLATE, SUBJECT_PLACEHOLDERS, Mailbox
from domain.ports import LoginRefused
from domain.replies import MAX_SUBJECT, check_footer, has_line_break
from domain.validation import check_destination, check_email, check_name, check_server, normalise_email
from domain.values import MailProtocol, ServerSettings

ADDRESS_CLAIM = "mailbox-address"
POP3_PORTS = (110, 995)
MAX_FOLDERS = 20


@dataclass(frozen=True)
class Attempt:
    """One login tried while binding, as the admin sees it."""

    source: str
    protocol: MailProtocol
    settings: ServerSettings
    outcome: str


class BindFailed(Rejected):
    def __init__(self, attempts: list[Attempt], *problems: Problem) -> None:
        super().__init__(*problems)
        self.attempts = attempts


def with_username(settings: ServerSettings | None, address: str) -> ServerSettings | None:
    if settings is None or settings.username.strip():
        return settings
    return replace(settings, username=address)


class MailboxCommands(Base):
    def _verify(self, protocol: MailProtocol, incoming: ServerSettings, password: str) -> Attempt:
        try:
            self.verify_login(protocol, incoming, password)
        except LoginRefused as refused:
            attempt = Attempt("given", protocol, incoming, refused.code.lower().replace("_", "-"))
            field = ("input", "password") if refused.code == "AUTH_FAILED" else ("input", "incoming")
            raise BindFailed([attempt], Problem(field, refused.message, refused.code)) from None
        return Attempt("given", protocol, incoming, "ok")

    def bind_mailbox(
        self,
        address: str,
        password: str,
        display_name: str | None = None,
        protocol: MailProtocol | None = None,
        incoming: ServerSettings | None = None,
        outgoing: ServerSettings | None = None,
    ) -> tuple[Written, list[Attempt]]:
        address = normalise_email(address)
        errors = Collector()
        check_email(errors, ("input", "address"), address)
        if not password:
            errors.add(("input", "password"), "must not be empty")
        if display_name is not None:
            check_name(errors, ("input", "displayName"), display_name)
        if incoming is not None:
            incoming = with_username(incoming, address)
            assert incoming is not None
            check_server(errors, ("input", "incoming"), incoming)
        outgoing = with_username(outgoing, address)
        if outgoing is not None:
            check_server(errors, ("input", "outgoing"), outgoing)
        errors.raise_if_any()
        self._check_address_free(address)
        if incoming is None:  # address and password alone: find the servers and log in (DESIGN 6)
            protocol, incoming, found_outgoing, attempts = self._discovered(address, password, protocol)
            outgoing = outgoing or found_outgoing
        else:
            if protocol is None:
                protocol = MailProtocol.POP3 if incoming.port in POP3_PORTS else MailProtocol.IMAP
            attempts = [self._verify(protocol, incoming, password)]
        claim = self._find(Claim.create_id(ADDRESS_CLAIM, address)) or Claim(ADDRESS_CLAIM, address)
        if claim.owner_id is not None:
            raise self._duplicate(address)
        mailbox = Mailbox(
            address=address,
            display_name=(display_name or address).strip(),
            protocol=protocol,
            incoming=incoming,
            outgoing=outgoing,
            secret_ref=self.secrets.put(password),
        )
        # Sensible reply settings from the start: "Re: {subject}" and a signature with the mailbox's name.
        mailbox.set_reply_settings(DEFAULT_SUBJECT_TEMPLATE, f"-- \n{mailbox.display_name}")
        claim.take(mailbox.id)
        position = self._store_or_reject(("input", "address"), claim, mailbox)
        return Written(mailbox.id, position), attempts

    def _discovered(self, address: str, password: str, protocol: MailProtocol | None
                    ) -> tuple[MailProtocol, ServerSettings, ServerSettings | None, list[Attempt]]:
        """Verified settings found from the address alone, or BindFailed: AUTH_FAILED when a server
        answered and refused the password, else NEEDS_ADVANCED_SETTINGS with every attempt."""
        if self.discover is None:
            raise BindFailed([], Problem(("input", "incoming"), "give the incoming server settings",
                                         "NEEDS_ADVANCED_SETTINGS"))
        found = self.discover(address, password)
        attempts = [Attempt(t.source, t.protocol, t.settings, t.outcome) for t in found.tried]
        if found.incoming is not None and found.protocol is not None and protocol in (None, found.protocol):
            return found.protocol, found.incoming, found.outgoing, attempts
        if found.auth_failed:
            raise BindFailed(attempts, Problem(
                ("input", "password"), "the mail server was found but refused this user name or password",
                "AUTH_FAILED"))
        raise BindFailed(attempts, Problem(
            ("input", "incoming"), "no working server settings were found for this address: give them "
            "(protocol, incoming, outgoing)", "NEEDS_ADVANCED_SETTINGS"))

    def _check_address_free(self, address: str) -> None:
        claim = self._find(Claim.create_id(ADDRESS_CLAIM, address))
        if claim is not None and claim.owner_id is not None:
            raise self._duplicate(address)

    @staticmethod
    def _duplicate(address: str) -> Rejected:
        return invalid(("input", "address"), f"{address} is already bound", "DUPLICATE")

    @retrying()
    def update_mailbox(
        self,
        mailbox_id: UUID,
        display_name: str | Keep = KEEP,
        password: str | Keep = KEEP,
        protocol: MailProtocol | Keep = KEEP,
        incoming: ServerSettings | Keep = KEEP,
        outgoing: ServerSettings | Keep | None = KEEP,
        enabled: bool | Keep = KEEP,
        folders: list[str] | Keep = KEEP,
    ) -> Written:
        mailbox = self._load(Mailbox, mailbox_id, ("input", "id"), "mailbox")
        errors = Collector()
        if not isinstance(folders, Keep):
            folders = list(dict.fromkeys(f.strip() for f in folders))
            check_folders(errors, ("input", "folders"), folders)
        new_name = mailbox.display_name if isinstance(display_name, Keep) else display_name.strip()
        check_name(errors, ("input", "displayName"), new_name)
        new_protocol = mailbox.protocol if isinstance(protocol, Keep) else protocol
        new_in = mailbox.incoming if isinstance(incoming, Keep) else with_username(incoming, mailbox.address)
        new_out = mailbox.outgoing if isinstance(outgoing, Keep) else with_username(outgoing, mailbox.address)
        assert new_in is not None
        check_server(errors, ("input", "incoming"), new_in)
        if new_out is not None:
            check_server(errors, ("input", "outgoing"), new_out)
        if isinstance(password, str) and not password:
            errors.add(("input", "password"), "must not be empty")
        check_destination(errors, password, (mailbox.protocol, mailbox.incoming, mailbox.outgoing),
                          (new_protocol, new_in, new_out), (incoming, outgoing))
        errors.raise_if_any()
        connection_changed = (new_protocol, new_in) != (mailbox.protocol, mailbox.incoming)
        if connection_changed or isinstance(password, str):
            secret = password if isinstance(password, str) else self.secrets.get(mailbox.secret_ref)
            self._verify(new_protocol, new_in, secret)
        if (new_name, new_protocol, new_in, new_out) != (
            mailbox.display_name, mailbox.protocol, mailbox.incoming, mailbox.outgoing
        ):
            mailbox.change_settings(new_name, new_protocol, new_in, new_out)
        if isinstance(password, str):
            mailbox.change_password(self.secrets.put(password))
        if not isinstance(folders, Keep) and folders != mailbox.folders:
            mailbox.change_folders(folders)
        if enabled is False and mailbox.enabled:
            mailbox.disable()
        elif enabled is True and not mailbox.enabled:
            mailbox.enable()
        return Written(mailbox.id, self._store(mailbox))

    @retrying()
    def record_sync_health(self, mailbox_id: UUID, error: str | None) -> None:
        """Records a change of the mailbox's sync health (failing with `error`, or recovered);
        nothing when the health did not change. A concurrent edit is retried on fresh state."""
        for _ in range(3):
            mailbox = self._find(mailbox_id)
            if not isinstance(mailbox, Mailbox) or mailbox.deleted:
                return
            if error is not None and not mailbox.failing:
                mailbox.sync_failed(error)
            elif error is None and mailbox.failing:
                mailbox.sync_recovered()
            else:
                return
            try:
                self._store(mailbox)
                return
            except Conflict:
                continue

    def set_reply_settings(self, mailbox_id: UUID, subject_template: str, footer: str) -> Written:
        mailbox = self._load(Mailbox, mailbox_id, ("input", "mailboxId"), "mailbox")
        errors = Collector()
        check_subject_template(errors, ("input", "subjectTemplate"), subject_template)
        check_footer(errors, ("input", "footer"), footer)
        errors.raise_if_any()
        footer = footer.replace("\r\n", "\n")
        if (subject_template, footer) != (mailbox.subject_template, mailbox.footer):
            mailbox.set_reply_settings(subject_template, footer)
        return Written(mailbox.id, self._store(mailbox))

    @retrying()
    def delete_mailbox(self, mailbox_id: UUID) -> Written:
        mailbox = self._load(Mailbox, mailbox_id, ("id",), "mailbox")
        rules = self.references.rules_using_mailbox(mailbox_id)
        if rules:
            raise invalid(("id",), f"routing rules use this mailbox: {', '.join(rules)}", "IN_USE")
        claim = self._find(Claim.create_id(ADDRESS_CLAIM, mailbox.address))
        mailbox.delete()
        if claim is not None and claim.owner_id == mailbox.id:
            claim.release()
            return Written(mailbox.id, self._store(mailbox, claim))
        return Written(mailbox.id, self._store(mailbox))


def check_folders(errors: Collector, field: tuple[str, ...], folders: list[str]) -> None:
    if not folders:
        errors.add(field, "take in at least one folder (e.g. INBOX)")
    if len(folders) > MAX_FOLDERS:
        errors.add(field, f"at most {MAX_FOLDERS} folders")
    for i, name in enumerate(folders):
        if not name or len(name) > 255 or any(ch in name for ch in "\r\n\x00*%"):
            errors.add((*field, str(i)), f"{name!r} is not a folder name")


def check_subject_template(errors: Collector, field: tuple[str, ...], template: str) -> None:
    if not template.strip():
        errors.add(field, "must not be empty")
        return
    if has_line_break(template):
        errors.add(field, "must not contain line breaks (CR, LF, U+2028, U+2029, U+0085 or others)")
        return
    if len(template) > MAX_SUBJECT:
        errors.add(field, f"must be at most {MAX_SUBJECT} characters")
        return
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        errors.add(field, f"unbalanced braces: {exc}")
        return
    unknown = [n for n in names if n not in SUBJECT_PLACEHOLDERS]
    if unknown:
        allowed = " ".join("{" + p + "}" for p in SUBJECT_PLACEHOLDERS)
        errors.add(field, f"unknown placeholder {{{unknown[0]}}}; use {allowed}")
        return
    # Placeholders nested in a format spec, bad conversions (!x) and specs (:d) pass the
    # parse above but would fail when a reply is sent: fill the template in once now.
    try:
        template.format(**{p: "x" for p in SUBJECT_PLACEHOLDERS})
    except (ValueError, KeyError, IndexError) as exc:
        errors.add(field, f"cannot be filled in: {exc!s}")


