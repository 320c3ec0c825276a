"""What every resolver shares: the request context, role checks, userErrors, read-your-writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from api.bootstrap import Services
from domain.commands.base import KEEP, Written
from domain.commands.tokens import Principal
from domain.errors import Problem, Rejected
from domain.values import Role

log = logging.getLogger("mailroom.api")
T = TypeVar("T")

strawberry.enum(Role)  # the domain enum is the GraphQL enum


class Context(BaseContext):
    """Per request: the wiring, the caller, and a cache that lives as long as the request."""

    def __init__(self, services: Services, principal: Principal | None) -> None:
        super().__init__()
        self.services = services
        self.principal = principal
        self.cache: dict[Any, Any] = {}


Ctx = Info[Context, None]


def services(info: Ctx) -> Services:
    return info.context.services


def principal(info: Ctx) -> Principal:
    who = info.context.principal
    if who is None:
        raise GraphQLError("missing or unknown bearer token", extensions={"code": "UNAUTHENTICATED"})
    return who


def require(info: Ctx, *roles: Role) -> Principal:
    who = principal(info)
    if who.role not in roles:
        raise GraphQLError(
            f"a {who.role.value} token may not do this", extensions={"code": "FORBIDDEN"}
        )
    return who


ADMIN_ONLY = (Role.ADMIN,)
READERS = (Role.ADMIN, Role.AUDITOR)
EVERYONE = (Role.ADMIN, Role.AUDITOR, Role.AGENT)


async def blocking(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """eventsourcing and the database drivers block: keep them off the event loop."""
    return await asyncio.to_thread(func, *args, **kwargs)


@strawberry.type
class UserError:
    field: list[str] | None
    message: str
    code: str

    @staticmethod
    def of(problem: Problem) -> UserError:
        return UserError(field=list(problem.field) if problem.field else None,
                         message=problem.message, code=problem.code)


async def command(info: Ctx, run: Callable[[], T]) -> tuple[T | None, list[UserError]]:
    """Runs a command; expected failures become userErrors; waits until the read
    models include what it wrote (read-your-writes)."""
    try:
        result = await blocking(run)
    except Rejected as rejected:
        info.context.cache["rejected"] = rejected  # for payloads that report more than errors
        return None, [UserError.of(p) for p in rejected.problems]
    # bind_mailbox returns (Written, attempts), create_api_token (value, Written): find the Written.
    parts = result if isinstance(result, tuple) else (result,)
    written = next((part for part in parts if isinstance(part, Written)), None)
    if isinstance(written, Written):
        caught_up = await blocking(services(info).projections.wait_for, written.position)
        if not caught_up:
            log.warning("read models lag behind position %s", written.position)
    return result, []


def given(value: Any) -> Any:
    """strawberry's UNSET (argument not given) as the domain's KEEP."""
    return KEEP if value is strawberry.UNSET else value


def keep_unless_given(value: Any) -> Any:
    """For inputs where null cannot mean anything: absent or null both keep the value."""
    return KEEP if value is strawberry.UNSET or value is None else value


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
