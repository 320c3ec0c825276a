"""API tokens (ADMIN only): issue (the value shown once), list (records, never a value or a
hash), revoke. A revoked or expired token, or one of a deactivated agent, gets HTTP 401 on its
next request (api/auth.py)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from adapters.database import Row
from api.auth import token_usage
from api.graphql.common import ADMIN_ONLY, Ctx, UserError, blocking, command, require, services
from api.graphql.mutations_mailboxes import DeletePayload
from api.graphql.types import Agent, agent_by_id
from domain.values import Role
from projections.token_queries import ApiTokens


def _moment(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@strawberry.input
class CreateApiTokenInput:
    name: str
    role: Role
    agent_id: UUID | None = strawberry.field(default=None, description="Required for AGENT tokens.")
    expires_at: datetime | None = strawberry.field(default=None, description="Absent: the token does not expire.")


@strawberry.type(description="A token's record; never its value.")
class ApiToken:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(str(self.row["id"]))

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])

    @strawberry.field
    def role(self) -> Role:
        return Role(self.row["role"])

    @strawberry.field
    async def agent(self, info: Ctx) -> Agent | None:
        return await agent_by_id(info, self.row["agent_id"])

    @strawberry.field
    def created_at(self) -> datetime:
        moment = _moment(self.row["created_at"])
        assert moment is not None
        return moment

    @strawberry.field
    def expires_at(self) -> datetime | None:
        return _moment(self.row["expires_at"])

    @strawberry.field(description="To about a minute: uses are noted at most once a minute per token.")
    def last_used_at(self) -> datetime | None:
        return _moment(self.row["last_used_at"])

    @strawberry.field(description="When it was revoked, or its agent deactivated.")
    def revoked_at(self) -> datetime | None:
        return _moment(self.row["revoked_at"])


@strawberry.type
class ApiTokenPayload:
    token: str | None = strawberry.field(description="The token value; shown only in this response.")
    api_token: ApiToken | None
    user_errors: list[UserError]


def _tokens(info: Ctx) -> ApiTokens:
    token_usage(services(info))  # its table, which the list joins
    return ApiTokens(services(info).database)


@strawberry.type
class TokenQuery:
    @strawberry.field(description="ADMIN only.")
    async def api_tokens(self, info: Ctx) -> list[ApiToken]:
        require(info, *ADMIN_ONLY)
        return [ApiToken(row=r) for r in await blocking(lambda: _tokens(info).all())]


@strawberry.type
class TokenMutations:
    @strawberry.mutation
    async def create_api_token(self, info: Ctx, input: CreateApiTokenInput) -> ApiTokenPayload:
        require(info, *ADMIN_ONLY)
        result, errors = await command(info, lambda: services(info).app.create_api_token(
            input.name, input.role, input.agent_id, input.expires_at))
        row = await blocking(lambda: _tokens(info).one(result[1].id)) if result else None
        return ApiTokenPayload(token=result[0] if result else None, api_token=ApiToken(row=row) if row else None,
                               user_errors=errors)

    @strawberry.mutation(description="Its next request gets HTTP 401, on every API process.")
    async def revoke_api_token(self, info: Ctx, id: UUID) -> DeletePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.revoke_api_token(id))
        return DeletePayload(deleted_id=written.id if written else None, user_errors=errors)
