"""Accounts (companies) and contacts (people, keyed by email), each with an owning agent."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import contact_id


class Account(Aggregate):
    TOPIC = "mailroom:Account"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:Account.Created"
        name: str
        domains: list[str]
        owner_id: UUID | None

    def __init__(self, name: str, domains: list[str], owner_id: UUID | None) -> None:
        self.name = name
        self.domains = list(domains)
        self.owner_id = owner_id

    @event("Updated", topic="mailroom:Account.Updated")
    def update(self, name: str, domains: list[str]) -> None:
        self.name = name
        self.domains = list(domains)

    @event("OwnerChanged", topic="mailroom:Account.OwnerChanged")
    def change_owner(self, owner_id: UUID | None) -> None:
        self.owner_id = owner_id


class Contact(Aggregate):
    """Its id is derived from the lower-cased email: one contact per address."""

    TOPIC = "mailroom:Contact"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:Contact.Created"
        email: str
        name: str | None
        account_id: UUID | None
        owner_id: UUID | None

    def __init__(
        self, email: str, name: str | None, account_id: UUID | None, owner_id: UUID | None
    ) -> None:
        self.email = email
        self.name = name
        self.account_id = account_id
        self.owner_id = owner_id

    @staticmethod
    def create_id(email: str) -> UUID:
        return contact_id(email)

    @event("Updated", topic="mailroom:Contact.Updated")
    def update(self, name: str | None, account_id: UUID | None) -> None:
        self.name = name
        self.account_id = account_id

    @event("OwnerChanged", topic="mailroom:Contact.OwnerChanged")
    def change_owner(self, owner_id: UUID | None) -> None:
        self.owner_id = owner_id
