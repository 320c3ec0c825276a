"""The sidebar of a page of conversations: every enabled source in position order, matched to each
customer; pushed records in one statement per source, HTTP sources fetched concurrently (one
request per distinct URL: adapters/sidebar_http.py caches and shares in-flight requests). A source
that fails shows its error; the others still show."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from adapters.database import Row
from adapters.sidebar_http import FetchedRecord, SidebarFetcher, SourceError, fill_template
from domain.personal import is_erased
from domain.ports import SecretStore
from projections.sidebar_queries import Customer, SidebarQueries

Auth = tuple[str, str] | None


@dataclass(frozen=True)
class RecordView:
    record_type: str
    external_id: str
    title: str
    fields: dict[str, Any]
    url: str | None


@dataclass(frozen=True)
class SectionView:
    source_id: str
    title: str
    records: list[RecordView]
    error: str | None = None


def shown(fields: dict[str, Any], configured: list[dict[str, str]]) -> dict[str, Any]:
    """The configured fields, in their order (all of them when none are configured)."""
    if not configured:
        return fields
    return {f["key"]: fields[f["key"]] for f in configured if f["key"] in fields}


class SidebarResolver:
    def __init__(self, queries: SidebarQueries, secrets: SecretStore, fetcher: SidebarFetcher) -> None:
        self.queries = queries
        self.secrets = secrets
        self.fetcher = fetcher

    async def resolve(self, conversations: list[tuple[str, str]]) -> list[list[SectionView]]:
        """For (conversation id, customer email) pairs, their sections, in the same order."""
        sources, customers = await asyncio.to_thread(self._read, [email for _, email in conversations])
        if not sources:
            return [[] for _ in conversations]
        per_source = await asyncio.gather(*(self._source(s, customers, conversations) for s in sources))
        return [[sections[i] for sections in per_source] for i in range(len(conversations))]

    def _read(self, emails: list[str]) -> tuple[list[Row], dict[str, Customer]]:
        sources = self.queries.sources(enabled_only=True)
        return sources, (self.queries.customers(emails) if sources else {})

    async def _source(self, source: Row, customers: dict[str, Customer], conversations: list[tuple[str, str]]
                      ) -> list[SectionView]:
        configured = json.loads(source["fields"] or "[]")
        who = [customers[email.lower()] for _, email in conversations]
        if source["kind"] == "RECORDS":
            keys = {key for c in who if (key := c.key(source["match_by"])) is not None}
            found = await asyncio.to_thread(self.queries.records, source["record_type"], source["match_by"],
                                            keys) if keys else {}
            return [self._section(source, [self._pushed(r, configured) for r in found.get(c.key(
                source["match_by"]) or "", [])]) for c in who]
        auth = await asyncio.to_thread(self._auth, source["auth_ref"])
        # an erased customer's pseudonym is never sent to another system: nothing to show
        urls = [None if is_erased(c.email) else fill_template(source["url_template"] or "", c.placeholders())
                for c in who]
        distinct = list(dict.fromkeys(u for u in urls if u is not None))
        answers = dict(zip(distinct, await self.fetcher.fetch_all([(u, auth) for u in distinct]), strict=True))
        out = []
        for url in urls:
            answer = answers.get(url) if url is not None else []
            if isinstance(answer, SourceError):
                out.append(self._section(source, [], answer.message))
            else:
                out.append(self._section(source, [self._fetched(source, r, configured) for r in answer or []]))
        return out

    def _auth(self, ref: str | None) -> Auth:
        if not ref:
            return None
        name, _, value = self.secrets.get(UUID(ref)).partition(":")
        return name.strip(), value.strip()

    @staticmethod
    def _section(source: Row, records: list[RecordView], error: str | None = None) -> SectionView:
        return SectionView(str(source["id"]), str(source["title"]), records, error)

    @staticmethod
    def _pushed(row: Row, configured: list[dict[str, str]]) -> RecordView:
        return RecordView(str(row["record_type"]), str(row["external_id"]), str(row["title"]),
                          shown(json.loads(row["fields"] or "{}"), configured), row["url"])

    @staticmethod
    def _fetched(source: Row, record: FetchedRecord, configured: list[dict[str, str]]) -> RecordView:
        return RecordView(str(source["record_type"]), record.external_id, record.title,
                          shown(dict(record.fields), configured), record.url)
