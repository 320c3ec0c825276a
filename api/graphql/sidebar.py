"""The workspace sidebar in the API: sources (ADMIN configures, ADMIN and AUDITOR read), records
pushed with upsertRecord (ADMIN), and each conversation's sections, resolved for a whole page at
once (one DataLoader batch: api/sidebar.py)."""

from __future__ import annotations

import json
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from adapters.database import Row
from api.graphql.common import ADMIN_ONLY, READERS, Ctx, UserError, blocking, command, given, require, services
from api.graphql.conversations import SidebarRecord
from api.graphql.mutations_mailboxes import DeletePayload
from domain.sidebar import MatchKey, SidebarFieldSpec, SourceKind, SourceSpec

strawberry.enum(SourceKind, name="SidebarSourceKind")
strawberry.enum(MatchKey)


@strawberry.type
class SidebarField:
    key: str
    label: str


@strawberry.type
class SidebarSource:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    def title(self) -> str:
        return str(self.row["title"])

    @strawberry.field
    def record_type(self) -> str:
        return str(self.row["record_type"])

    @strawberry.field
    def kind(self) -> SourceKind:
        return SourceKind(self.row["kind"])

    @strawberry.field(description="For HTTP: e.g. https://erp.example/api/orders?email={customer_email}")
    def url_template(self) -> str | None:
        return str(self.row["url_template"]) if self.row["url_template"] else None

    @strawberry.field
    def match_by(self) -> MatchKey:
        return MatchKey(self.row["match_by"])

    @strawberry.field
    def fields(self) -> list[SidebarField]:
        return [SidebarField(key=f["key"], label=f["label"]) for f in json.loads(self.row["fields"] or "[]")]

    @strawberry.field
    def position(self) -> int:
        return int(self.row["position"])

    @strawberry.field
    def enabled(self) -> bool:
        return bool(self.row["enabled"])

    @strawberry.field(description="Whether requests carry an auth header (its value is never readable).")
    def has_auth_header(self) -> bool:
        return bool(self.row["auth_ref"])


@strawberry.input
class SidebarFieldInput:
    key: str
    label: str


@strawberry.input
class SidebarSourceInput:
    title: str
    record_type: str
    kind: SourceKind
    url_template: str | None = None
    match_by: MatchKey
    fields: list[SidebarFieldInput]
    position: int | None = 0
    enabled: bool | None = True
    auth_header: str | None = strawberry.field(default=strawberry.UNSET, description=(
        "HTTP only: one header sent with every request, e.g. 'Authorization: Bearer …'; kept encrypted, "
        "never readable. Absent: unchanged; null or empty: removed."))

    def to_domain(self) -> SourceSpec:
        return SourceSpec(self.title.strip(), self.record_type.strip(), self.kind, self.url_template or None,
                          self.match_by, [SidebarFieldSpec(f.key.strip(), f.label.strip()) for f in self.fields],
                          self.position if self.position is not None else 0,
                          True if self.enabled is None else self.enabled)


@strawberry.type
class SidebarSourcePayload:
    source: SidebarSource | None
    user_errors: list[UserError]


@strawberry.input
class RecordInput:
    record_type: str
    external_id: str
    title: str
    customer_email: str | None = None
    account_id: UUID | None = None
    contact_id: UUID | None = None
    fields: JSON
    url: str | None = None


@strawberry.type
class RecordPayload:
    record: SidebarRecord | None
    user_errors: list[UserError]


async def _source(info: Ctx, source_id: UUID) -> SidebarSource | None:
    row = await blocking(services(info).sidebar_queries.source, str(source_id))
    return None if row is None else SidebarSource(row=row)


@strawberry.type
class SidebarQuery:
    @strawberry.field
    async def sidebar_sources(self, info: Ctx) -> list[SidebarSource]:
        require(info, *READERS)
        return [SidebarSource(row=r) for r in await blocking(services(info).sidebar_queries.sources)]


VIEWS = ("sidebar",)


@strawberry.type
class SidebarMutations:
    @strawberry.mutation
    async def create_sidebar_source(self, info: Ctx, input: SidebarSourceInput) -> SidebarSourcePayload:
        require(info, *ADMIN_ONLY)
        auth = given(input.auth_header)
        written, errors = await command(info, lambda: services(info).app.create_sidebar_source(
            input.to_domain(), auth if isinstance(auth, str) else None), views=VIEWS)
        return SidebarSourcePayload(source=await _source(info, written.id) if written else None, user_errors=errors)

    @strawberry.mutation
    async def update_sidebar_source(self, info: Ctx, id: UUID, input: SidebarSourceInput) -> SidebarSourcePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.update_sidebar_source(
            id, input.to_domain(), given(input.auth_header)), views=VIEWS)
        return SidebarSourcePayload(source=await _source(info, written.id) if written else None, user_errors=errors)

    @strawberry.mutation
    async def delete_sidebar_source(self, info: Ctx, id: UUID) -> DeletePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.delete_sidebar_source(id), views=VIEWS)
        return DeletePayload(deleted_id=written.id if written else None, user_errors=errors)

    @strawberry.mutation
    async def upsert_record(self, info: Ctx, input: RecordInput) -> RecordPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.upsert_record(
            input.record_type, input.external_id, input.title, input.customer_email, input.account_id,
            input.contact_id, input.fields, input.url), views=VIEWS)
        if written is None:
            return RecordPayload(record=None, user_errors=errors)
        row = await blocking(services(info).sidebar_queries.record, str(written.id))
        record = None if row is None else SidebarRecord(
            record_type=row["record_type"], external_id=row["external_id"], title=row["title"],
            fields=json.loads(row["fields"] or "{}"), url=row["url"])
        return RecordPayload(record=record, user_errors=errors)

    @strawberry.mutation
    async def delete_record(self, info: Ctx, record_type: str, external_id: str) -> DeletePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.delete_record(record_type, external_id),
                                        views=VIEWS)
        return DeletePayload(deleted_id=written.id if written else None, user_errors=errors)

