"""The workspace sidebar (DESIGN 7): sources an admin configures, and records pushed into mailroom.

A source shows one record type, matched to the customer by email, email domain, contact or
account; RECORDS sources read records pushed with upsertRecord, HTTP sources read a JSON endpoint
live (its optional auth header is a secret: only its reference is in the events)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.ids import NAMESPACE


class SourceKind(Enum):
    RECORDS = "RECORDS"
    HTTP = "HTTP"


class MatchKey(Enum):
    CUSTOMER_EMAIL = "CUSTOMER_EMAIL"
    EMAIL_DOMAIN = "EMAIL_DOMAIN"
    CONTACT = "CONTACT"
    ACCOUNT = "ACCOUNT"


@dataclass(frozen=True)
class SidebarFieldSpec:
    key: str
    label: str


@dataclass(frozen=True)
class SourceSpec:
    """What an admin configures for a source (the auth header aside: a secret)."""

    title: str
    record_type: str
    kind: SourceKind
    url_template: str | None
    match_by: MatchKey
    fields: list[SidebarFieldSpec] = field(default_factory=list)
    position: int = 0
    enabled: bool = True


class SidebarSource(Aggregate):
    TOPIC = "mailroom:SidebarSource"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:SidebarSource.Created"
        spec: SourceSpec
        auth_ref: UUID | None

    def __init__(self, spec: SourceSpec, auth_ref: UUID | None) -> None:
        self.spec = spec
        self.auth_ref = auth_ref  # the stored secret holding "Name: value" of the auth header
        self.deleted = False

    @event("Changed", topic="mailroom:SidebarSource.Changed")
    def change(self, spec: SourceSpec) -> None:
        self.spec = spec

    @event("AuthChanged", topic="mailroom:SidebarSource.AuthChanged")
    def change_auth(self, auth_ref: UUID | None) -> None:
        self.auth_ref = auth_ref

    @event("Deleted", topic="mailroom:SidebarSource.Deleted")
    def delete(self) -> None:
        self.deleted = True


def record_id(record_type: str, external_id: str) -> UUID:
    """One record per (recordType, externalId): upserts find it by this derived id."""
    return uuid5(NAMESPACE, f"record:{record_type}:{external_id}")


@dataclass(frozen=True)
class RecordData:
    title: str
    customer_email: str | None
    account_id: UUID | None
    contact_id: UUID | None
    fields_json: str  # the record's fields as JSON text: kept as given, never read as typed values
    url: str | None

    @property
    def fields(self) -> dict[str, Any]:
        found = json.loads(self.fields_json)
        return found if isinstance(found, dict) else {}


class SidebarRecord(Aggregate):
    TOPIC = "mailroom:SidebarRecord"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:SidebarRecord.Created"
        record_type: str
        external_id: str
        data: RecordData

    def __init__(self, record_type: str, external_id: str, data: RecordData) -> None:
        self.record_type = record_type
        self.external_id = external_id
        self.data = data
        self.deleted = False

    @staticmethod
    def create_id(record_type: str, external_id: str, data: RecordData) -> UUID:
        return record_id(record_type, external_id)

    @event("Updated", topic="mailroom:SidebarRecord.Updated")
    def update(self, data: RecordData) -> None:
        self.data = data
        self.deleted = False

    @event("Deleted", topic="mailroom:SidebarRecord.Deleted")
    def delete(self) -> None:
        self.deleted = True
