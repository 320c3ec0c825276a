"""What a failed request leaves behind: a log line that holds nothing the client sent, and an
answer that holds nothing of the server's internals.

The log. strawberry's default `Schema.process_errors` logs each GraphQLError as str(error): its
message and an excerpt of the query text around the error's location, so a password written
inline in a mutation (`bindMailbox(input: {password: "…"}) { bogusField }`), or a value the
message quotes (`Int cannot represent non 32-bit signed integer value: …`, `Variable '$input'
got invalid value {…}`), ended up in the server log. Here an error is logged as its operation
name (only when it is a well-formed GraphQL name), its code, its path and its line:column in the
document: never its message, the query text or the variables. An unexpected exception is
logged with its type and its stack frames (source lines, no values), not its message, which
may quote what the client sent (a database error quotes the offending value).

The answer. An exception a resolver did not mean to raise (anything but a GraphQLError: a
database driver's error, a bug) reaches the client as "internal error" with extensions.code
INTERNAL_ERROR, its path and location kept; errors the API raises on purpose (UNAUTHENTICATED,
FORBIDDEN, the request limits) and the errors of a malformed request (syntax, validation,
variables) are answered as they are.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

log = logging.getLogger("mailroom.graphql")

INTERNAL = "INTERNAL_ERROR"
INTERNAL_MESSAGE = "internal error"
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")


def is_internal(error: GraphQLError) -> bool:
    """An exception nobody meant to raise, as opposed to a deliberate GraphQLError or an error
    about the request itself."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    if error.path is not None:
        return True  # raised while resolving a field
    # Outside the fields: variable coercion and literal validation wrap a scalar's own
    # ValueError into a message of their own ("Variable '$id' got invalid value ..."); only
    # strawberry's catch-all for any other exception copies the exception's text.
    return error.message == str(original)


def code_of(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if is_internal(error):
        return INTERNAL
    if error.path is not None:
        return "FIELD_ERROR"  # e.g. null for a non-null field
    if error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def operation_label(name: Any) -> str:
    """The operation's name as given, if it is a GraphQL name; never free text."""
    return name if isinstance(name, str) and _NAME.fullmatch(name) else "-"


def describe(error: GraphQLError, operation: Any) -> str:
    """One log line: operation, code, path, locations. Nothing taken from the client's text
    but names it chose for its operation and its response keys."""
    path = ".".join(str(p) for p in error.path) if error.path else "-"
    where = ",".join(f"{loc.line}:{loc.column}" for loc in error.locations or ()) or "-"
    return f"graphql error: operation={operation_label(operation)} code={code_of(error)} path={path} at={where}"


def log_errors(errors: Iterable[GraphQLError], operation: Any) -> None:
    for error in errors:
        line = describe(error, operation)
        original = error.original_error
        if is_internal(error) and original is not None:
            frames = "".join(traceback.format_tb(original.__traceback__))
            kind = f"{type(original).__module__}.{type(original).__qualname__}"
            log.error("%s exception=%s\n%s", line, kind, frames.rstrip())
        else:
            log.warning("%s", line)


def masked(errors: list[GraphQLError]) -> list[GraphQLError]:
    """The errors as the client may see them: internal ones replaced by a generic error."""
    return [GraphQLError(INTERNAL_MESSAGE, nodes=e.nodes, source=e.source, positions=e.positions, path=e.path,
                         extensions={"code": INTERNAL})
            if is_internal(e) else e for e in errors]


class _NoQueryStrings(logging.Filter):
    """uvicorn's access log line holds the request's path with its query string, where a GET
    request to /graphql carries the whole query and its variables: keep the path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


ACCESS_LOG_FILTER = _NoQueryStrings()


def redact_access_log() -> None:
    """Installs the filter on uvicorn's access logger (once; uvicorn's dictConfig keeps it)."""
    access = logging.getLogger("uvicorn.access")
    if ACCESS_LOG_FILTER not in access.filters:
        access.addFilter(ACCESS_LOG_FILTER)
    # httpx logs every request's full URL at INFO: a sidebar source's URL holds the customer's
    # address (and whatever key an admin put in its query). Warnings and errors still show.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
