"""Heavy operations run on an event loop of their own, in a thread, so that they do not hold
up everyone else's requests.

strawberry and graphql-core complete every field on the event loop that runs the operation;
only the database reads go to threads. An accepted but large answer (a page of 200
conversations with every nested field: about 0.3 s of Python) therefore held the server's
loop for its whole completion, and four of them at once made a `{ me { role } }` from another
client wait 1.7 s (p99). Operations whose estimated cost (api/graphql/cost.py) is at least
`HEAVY` now run on the heavy lane: one thread with its own event loop, where heavy operations
interleave with each other while the server's loop stays free for the rest. The GIL is still
shared: the lane slows others by the interpreter's switch interval (lowered to 1 ms once the
lane starts), not by whole answers. Measured through `mailroom serve` (SQLite, 2 cores), p99 of
`{ me { role } }` from another client while 4 clients loop the same heavy query:

    4 x conversations(first: 200) with every nested field (10k conversations)   1.7 s -> 80-100 ms
    4 x agents { groups { members { name } } } (a group of 350: 122k names)      2.1 s -> 20-30 ms
    4 x the report's nested agentGroups query (now refused: QUERY_TOO_COSTLY)        ->  21 ms
    (alone: 5-10 ms)
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Coroutine, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from graphql import DocumentNode, GraphQLError, parse

from api.graphql.cost import CostModel

T = TypeVar("T")

HEAVY = 5_000  # estimated cost from which an operation runs on the heavy lane
SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005 (p99 of a light request beside 4 heavy: 80 vs 210 ms)
MAX_TOKENS = 5_000  # as the schema's MaxTokensLimiter: a document longer is refused anyway


@lru_cache(maxsize=256)
def _document(query: str) -> DocumentNode | None:
    try:
        return parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None


def is_heavy(model: CostModel, query: str | None, operation_name: str | None,
             variables: Mapping[str, Any] | None) -> bool:
    """Whether the operation is estimated at HEAVY or more (before validation: an invalid
    document is estimated as it stands, or not at all; validation then refuses it)."""
    document = _document(query) if isinstance(query, str) else None
    if document is None:
        return False
    try:
        return model.cost(query, document, operation_name, variables) >= HEAVY
    except Exception:  # an unvalidated document may be anything: the loop runs it
        return False


class Lane:
    """A daemon thread running an event loop, started on first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                # The server's loop then waits at most this long for the GIL the lane holds.
                sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name=self.name, daemon=True).start()
                self._loop = loop
            return self._loop

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs the coroutine on the lane; cancelling the caller cancels it there."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop()))


HEAVY_LANE = Lane("mailroom-graphql-heavy")
