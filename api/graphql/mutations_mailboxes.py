"""Mailbox mutations: bind (with a real login), update, reply settings, delete."""

from __future__ import annotations

from uuid import UUID

import strawberry

from api.graphql.common import (
    ADMIN_ONLY,
    Ctx,
    UserError,
    blocking,
    command,
    decided,
    given,
    keep_unless_given,
    pending,
    require,
    services,
)
from api.graphql.inputs import (
    BindMailboxInput,
    ReplySettingsInput,
    ServerSettingsInput,
    UpdateMailboxInput,
    settings_of,
)
from api.graphql.types import Mailbox
from api.processes.sync import Busy, MailboxSync
from domain.commands.base import KEEP
from domain.commands.mailboxes import Attempt, BindFailed
from domain.values import MailProtocol, TransportSecurity


@strawberry.type
class DiscoveryAttempt:
    source: str
    protocol: MailProtocol
    host: str
    port: int
    security: TransportSecurity
    outcome: str

    @staticmethod
    def of(attempt: Attempt) -> DiscoveryAttempt:
        return DiscoveryAttempt(source=attempt.source, protocol=attempt.protocol,
                                host=attempt.settings.host, port=attempt.settings.port,
                                security=attempt.settings.security, outcome=attempt.outcome)


SYNC_WAIT_SECONDS = 60.0  # a running background sync of the mailbox finishes first


@strawberry.type
class BindMailboxPayload:
    mailbox: Mailbox | None
    needs_advanced_settings: bool
    attempts: list[DiscoveryAttempt]
    user_errors: list[UserError]


@strawberry.type
class MailboxPayload:
    mailbox: Mailbox | None
    user_errors: list[UserError]


@strawberry.type
class SyncPayload:
    mailbox: Mailbox | None
    fetched: int = strawberry.field(
        description="Messages newly taken in by this sync (already-seen ones are not counted).")
    conversations_opened: int
    user_errors: list[UserError]


@strawberry.type
class DeletePayload:
    deleted_id: UUID | None
    user_errors: list[UserError]


async def mailbox_of(info: Ctx, mailbox_id: UUID) -> Mailbox | None:
    row = await blocking(services(info).directory.mailbox, mailbox_id)
    return None if row is None else Mailbox(row=row)


@strawberry.type
class MailboxMutations:
    @strawberry.mutation
    async def bind_mailbox(self, info: Ctx, input: BindMailboxInput) -> BindMailboxPayload:
        require(info, *ADMIN_ONLY)
        app = services(info).app
        result, errors = await command(info, lambda: app.bind_mailbox(
            input.address, input.password, input.display_name, input.protocol,
            settings_of(input.incoming), settings_of(input.outgoing)))
        if result is None:
            needs = any(e.code == "NEEDS_ADVANCED_SETTINGS" for e in errors)
            return BindMailboxPayload(mailbox=None, needs_advanced_settings=needs,
                                      attempts=_attempts_of_last_failure(info), user_errors=errors)
        written, attempts = result
        return BindMailboxPayload(mailbox=await mailbox_of(info, written.id), needs_advanced_settings=False,
                                  attempts=[DiscoveryAttempt.of(a) for a in attempts], user_errors=[])

    @strawberry.mutation
    async def update_mailbox(self, info: Ctx, input: UpdateMailboxInput) -> MailboxPayload:
        require(info, *ADMIN_ONLY)
        incoming = keep_unless_given(input.incoming)
        outgoing = given(input.outgoing)  # null removes the outgoing settings
        written, errors = await command(info, lambda: services(info).app.update_mailbox(
            input.id,
            display_name=keep_unless_given(input.display_name),
            password=keep_unless_given(input.password),
            protocol=keep_unless_given(input.protocol),
            incoming=incoming if incoming is KEEP else incoming.to_domain(),
            outgoing=outgoing.to_domain() if isinstance(outgoing, ServerSettingsInput) else outgoing,
            enabled=keep_unless_given(input.enabled),
            folders=keep_unless_given(input.folders)))
        if written is not None:  # new settings or password: the next background sync need not wait
            await blocking(services(info).sync_state.retry_now, written.id)
        return MailboxPayload(mailbox=await mailbox_of(info, written.id) if written else None, user_errors=errors)

    @strawberry.mutation
    async def set_reply_settings(self, info: Ctx, input: ReplySettingsInput) -> MailboxPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.set_reply_settings(
            input.mailbox_id, input.subject_template, input.footer))
        return MailboxPayload(mailbox=await mailbox_of(info, written.id) if written else None, user_errors=errors)

    @strawberry.mutation
    async def delete_mailbox(self, info: Ctx, id: UUID) -> DeletePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.delete_mailbox(id))
        return DeletePayload(deleted_id=written.id if written else None, user_errors=errors)

    @strawberry.mutation
    async def sync_mailbox(self, info: Ctx, id: UUID) -> SyncPayload:
        """Fetch new mail now and return once it is taken in."""
        require(info, *ADMIN_ONLY)
        s = services(info)
        if await blocking(s.directory.mailbox, id) is None:
            return SyncPayload(mailbox=None, fetched=0, conversations_opened=0,
                               user_errors=[UserError(field=["id"], message="mailbox not found", code="NOT_FOUND")])
        try:
            report = await blocking(MailboxSync.of(s).sync, id, SYNC_WAIT_SECONDS)
        except Busy:
            return SyncPayload(mailbox=await mailbox_of(info, id), fetched=0, conversations_opened=0, user_errors=[
                UserError(field=["id"], message="another sync of this mailbox is still running", code="CONFLICT")])
        # Answer once the new conversations are routed and assigned, and the read models show it.
        errors = [] if report.error is None else [
            UserError(field=["id"], message=report.error, code=report.error_code or "SYNC_FAILED")]
        if not await decided(info, report.position, ("directory", "conversations")):
            errors.append(pending("the new conversations are"))
        return SyncPayload(mailbox=await mailbox_of(info, id), fetched=report.fetched,
                           conversations_opened=report.opened, user_errors=errors)


def _attempts_of_last_failure(info: Ctx) -> list[DiscoveryAttempt]:
    failure = info.context.cache.get("rejected")
    return [DiscoveryAttempt.of(a) for a in failure.attempts] if isinstance(failure, BindFailed) else []

