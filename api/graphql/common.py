"""What every resolver shares: the request context, role checks, userErrors, read-your-writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from api.graphql.loaders import Loaders
from api.services import Services
from domain.commands.base import KEEP, Written
from domain.commands.tokens import Principal
from domain.errors import Problem, Rejected
from domain.values import Role

log = logging.getLogger("mailroom.api")
T = TypeVar("T")

strawberry.enum(Role)  # the domain enum is the GraphQL enum


class Context(BaseContext):
    """Per request: the wiring, the caller, a cache that lives as long as the request, and the
    request's DataLoaders (api/graphql/loaders.py)."""

    def __init__(self, services: Services, principal: Principal | None) -> None:
        super().__init__()
        self.services = services
        self.principal = principal
        self.cache: dict[Any, Any] = {}
        self.loaders = Loaders(services.directory, services.conversations, services.database)

    def refresh(self) -> None:
        """Forgets what the loaders read: after a command, the answer reads what it wrote."""
        self.loaders = Loaders(self.services.directory, self.services.conversations, self.services.database)


Ctx = Info[Context, None]


def services(info: Ctx) -> Services:
    return info.context.services


def loaders(info: Ctx) -> Loaders:
    return info.context.loaders


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


READ_WAIT_SECONDS = 5.0  # how long a mutation waits for the views its answer reads


def pending(what: str, written_id: Any = None) -> UserError:
    """The command is committed, but a view its answer reads has not caught up in time."""
    saved = f" (id {written_id})" if written_id is not None else ""
    return UserError(field=None, code="PENDING",
                     message=f"saved{saved}, but {what} not shown yet: query it again shortly; "
                             "do not repeat the change")


async def reached(info: Ctx, position: int | None, views: tuple[str, ...] | None = None) -> bool:
    """Read-your-writes without doing the work in the request: waits, bounded, until the
    views (all by default) include `position`, whichever process applies them."""
    return await blocking(services(info).projections.reached, position, views, READ_WAIT_SECONDS)


async def decided(info: Ctx, position: int | None, views: tuple[str, ...]) -> bool:
    """Waits, bounded, until the assigner has decided on `position` and `views` (those the
    answer reads) show its decisions: they are in the log by the head read after it."""
    s = services(info)
    signal = s.app.recorder.signal  # type: ignore[attr-defined]
    if not await blocking(s.assigner.reached, position, signal, READ_WAIT_SECONDS):
        return False
    return await reached(info, await blocking(s.projections.head), views)


async def command(info: Ctx, run: Callable[[], T],
                  views: tuple[str, ...] = ("directory",)) -> tuple[T | None, list[UserError]]:
    """Runs a command; expected failures become userErrors; waits until the views the answer
    reads include what it wrote (read-your-writes). A committed command's result is always
    returned; if a view lags past the bound, a PENDING userError says so."""
    try:
        result = await blocking(run)
    except Rejected as rejected:
        info.context.cache["rejected"] = rejected  # for payloads that report more than errors
        return None, [UserError.of(p) for p in rejected.problems]
    info.context.refresh()  # written: what this request's loaders read before is stale now
    # bind_mailbox returns (Written, attempts), create_api_token (value, Written): find the Written.
    parts = result if isinstance(result, tuple) else (result,)
    written = next((part for part in parts if isinstance(part, Written)), None)
    if isinstance(written, Written) and not await reached(info, written.position, views):
        log.warning("views %s lag behind position %s", ",".join(views), written.position)
        return result, [pending("the change is", written.id)]
    return result, []


def given(value: Any) -> Any:
    """strawberry's UNSET (argument not given) as the domain's KEEP."""
    return KEEP if value is strawberry.UNSET else value


def keep_unless_given(value: Any) -> Any:
    """For inputs where null cannot mean anything: absent or null both keep the value."""
    return KEEP if value is strawberry.UNSET or value is None else value
