"""Accounts (companies) and contacts (people, keyed by email), each with an owning agent; erasures."""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.ids import NAMESPACE, contact_id


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


class Erasure(Aggregate):
    """Each erasure of one customer (domain/personal.py), known by pseudonym only: what it made
    unreadable, so the views put tombstones in place of the customer's rows. Its id comes from
    the pseudonym: a customer erased again (who wrote after the first) adds an event to it."""

    TOPIC = "mailroom:Erasure"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:Erasure.Created"
        person: str

    def __init__(self, person: str) -> None:
        self.person = person
        self.times = 0

    @staticmethod
    def create_id(person: str) -> UUID:
        return uuid5(NAMESPACE, f"erasure:{person}")

    class Erased(Aggregate.Event):
        """`customer` is the tombstone address that now stands for the customer everywhere."""

        TOPIC = "mailroom:Erasure.Erased"
        person: str
        customer: str
        conversation_ids: list[UUID]
        message_ids: list[UUID]  # inbound messages and replies
        contact_ids: list[UUID]
        record_ids: list[UUID]
        blobs: int  # how many stored blobs were deleted

    @event(Erased)
    def erase(self, person: str, customer: str, conversation_ids: list[UUID], message_ids: list[UUID],
              contact_ids: list[UUID], record_ids: list[UUID], blobs: int) -> None:
        self.times += 1
