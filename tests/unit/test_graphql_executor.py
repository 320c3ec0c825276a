"""api/graphql/executor.py: the short way for attribute-only fields answers exactly as
graphql-core's own executor, data and errors (message, path, locations), regular or not."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

import pytest
import strawberry

from api.graphql.executor import READY, FastExecutor
from api.graphql.types import from_row, plain


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@from_row
@strawberry.type
class Leaf:
    row: strawberry.Private[dict[str, Any]]
    id: UUID = plain(lambda r: UUID(r["id"]))
    name: str = plain(lambda r: r["name"])
    broken: str = plain(lambda r: r["missing"])  # raises KeyError
    maybe: int | None = plain(lambda r: r.get("maybe"))


@strawberry.type
class Inner:
    text: str
    number: int | None = None
    colour: Colour = Colour.RED
    must: str = "x"
    leaf: Leaf | None = None


@strawberry.type
class Item:
    name: str
    inner: Inner
    maybe_inner: Inner | None = None
    when: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    count: int = 0
    later: str = "now"  # replaced by a coroutine in some items

    @strawberry.field
    def upper(self) -> str:
        return self.name.upper()

    @strawberry.field
    async def slow(self) -> str:
        await asyncio.sleep(0)
        return self.name + "!"

    @strawberry.field
    def fails(self) -> str | None:
        raise ValueError("resolver failed")


@strawberry.type
class Holder:
    """READY fields: their resolvers answer `ready[key]` when set, and otherwise work it out
    (here: a marker, so that the test sees which way was taken, the same under both executors)."""

    ready: strawberry.Private[dict[str, Any]] = dataclasses.field(default_factory=dict)

    @strawberry.field(graphql_type=list[Inner], metadata={READY: "inners"})
    def inners(self) -> Any:
        return self.ready["inners"] if "inners" in self.ready else [Inner(text="resolved")]

    @strawberry.field(graphql_type=Inner | None, metadata={READY: "inner"})
    def inner(self) -> Any:
        return self.ready["inner"] if "inner" in self.ready else Inner(text="resolved")

    @strawberry.field(graphql_type=str, metadata={READY: "label"})
    def label(self) -> Any:
        return self.ready.get("label", "resolved")

    @strawberry.field(graphql_type=list[str], metadata={READY: "tags"})
    async def tags(self) -> Any:
        return self.ready.get("tags", ["resolved"])


def holders() -> list[Holder]:
    inners = [Inner(text="a"), Inner(text="b", colour=Colour.BLUE)]
    return [Holder(), Holder(ready={"inners": inners, "inner": inners[1], "label": "ready", "tags": ["x", "y"]}),
            Holder(ready={"inner": None, "inners": [], "label": None, "tags": None}),  # null for String!, [String!]!
            Holder(ready={"inners": [inners[0], None], "label": 5, "tags": ["x", None]}),  # null in [Inner!]!
            Holder(ready={"inners": None, "inner": "not an Inner", "label": Colour.RED})]


async def _later(value: str) -> str:
    await asyncio.sleep(0)
    return value


def items(awaited: bool = False) -> list[Item]:
    leaf = Leaf(row={"id": "8d6a1f2e-6a53-4c4f-9a57-0a4a3e7c1c11", "name": "leaf", "maybe": 3})
    out = [Item(name=f"item{i}", inner=Inner(text=f"t{i}", number=i, leaf=leaf), count=i) for i in range(4)]
    out[1].maybe_inner = Inner(text="m", colour=Colour.BLUE)
    if awaited:  # an attribute holding an awaitable: graphql-core awaits it
        out[2].later = _later("awaited")  # type: ignore[assignment]
    return out


def irregular() -> list[Any]:
    bad = items()
    bad[0].count = "not a number"  # type: ignore[assignment]  # Int refuses it
    bad[1].inner = None  # type: ignore[assignment]  # null for a non-null object
    bad[2].inner.must = None  # type: ignore[assignment]  # null for a non-null leaf, two levels down
    bad[3].inner.colour = "green"  # type: ignore[assignment]  # no such enum value
    return bad


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return items()

    @strawberry.field
    async def later_items(self) -> list[Item]:
        return items(awaited=True)

    @strawberry.field
    def nullable_items(self) -> list[Item | None]:
        return [None, *items()]

    @strawberry.field
    def strict_items(self) -> list[Item]:
        return [*items()[:2], None]  # type: ignore[list-item]  # null in [Item!]!

    @strawberry.field
    def irregular(self) -> list[Item | None]:
        return irregular()

    @strawberry.field
    def strict_irregular(self) -> list[Item] | None:
        return irregular()

    @strawberry.field
    def one(self) -> Item:
        return items()[0]

    @strawberry.field
    def leaves(self) -> list[Leaf]:
        return [Leaf(row={"id": "8d6a1f2e-6a53-4c4f-9a57-0a4a3e7c1c11", "name": "a"}),
                Leaf(row={"id": "not-a-uuid", "name": "b"})]

    @strawberry.field
    def holders(self) -> list[Holder | None]:
        return holders()  # type: ignore[return-value]

    @strawberry.field
    def awaitable_items(self) -> list[Item]:
        async def one(item: Item) -> Item:
            return item

        return [one(i) for i in items(awaited=True)]  # type: ignore[misc]


ordinary = strawberry.Schema(query=Query)
fast = strawberry.Schema(query=Query, execution_context_class=FastExecutor)

ITEM = "name upper count when later inner { text number colour must } maybeInner { text colour }"
QUERIES = [
    "{ items { " + ITEM + " } }",
    "{ laterItems { " + ITEM + " slow } }",
    "{ nullableItems { name inner { text } } strictItems { name } }",
    "{ irregular { name count inner { text must colour } } }",
    "{ strictIrregular { name count inner { text must colour } } }",
    "{ one { __typename n: name name inner { __typename leaf { id name maybe } } ...F } } "
    "fragment F on Item { count inner { number } fails }",
    "{ items { name inner { leaf { id name broken } } } }",
    "{ leaves { name id } }",
    "{ awaitableItems { name later inner { text } } }",
    "query($s: Boolean!) { items { name @skip(if: $s) count @include(if: $s) inner { text } } }",
    "{ holders { label tags inner { text colour } inners { text colour } } }",
    "{ holders { inner { text } } }",
    "{ holders { l: label label __typename } }",
]


def run(schema: strawberry.Schema, query: str) -> tuple[Any, list[Any]]:
    result = asyncio.run(schema.execute(query, variable_values={"s": True}))
    return result.data, sorted((e.formatted for e in result.errors or ()), key=repr)


@pytest.mark.parametrize("query", QUERIES)
def test_fast_executor_answers_as_graphql_core(query: str) -> None:
    assert run(fast, query) == run(ordinary, query)


def test_the_irregular_cases_do_report_errors() -> None:
    data, errors = run(fast, QUERIES[3])
    assert data is not None and len(errors) == 4
    assert data["irregular"][0] is None and data["irregular"][1] is None
    assert {tuple(e["path"]) for e in errors} == {("irregular", 0, "count"), ("irregular", 1, "inner"),
                                                 ("irregular", 2, "inner", "must"),
                                                 ("irregular", 3, "inner", "colour")}
