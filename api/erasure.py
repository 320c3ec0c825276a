"""Erasing a customer (crypto-shredding, domain/personal.py): `eraseCustomer` and
`mailroom customer erase EMAIL`.

In this order, each step safe to repeat, so an erasure cut short (kill -9 at any line) is
finished by running it again:
1. find what holds the customer's data: the aggregates the keyring records as theirs (and,
   for data recorded before sealing existed, their conversations and contact in the views),
   read with the key still there: the blobs their messages and replies refer to;
2. delete those blobs, except any that another customer's message refers to as well (blobs
   are stored once per content);
3. delete the customer's key: every sealed field of every event of theirs reads as a tombstone;
4. record `Erasure.Erased` (pseudonym, tombstone address, the ids): the views put tombstones in
   place of the rows. (The assigner keys its figures by pseudonym already: nothing to change.)
The log itself is not touched: the hash chain covers the sealed bytes, and `audit verify` passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from api.services import Services
from domain.conversation import Conversation
from domain.customers import Contact
from domain.errors import Collector
from domain.ids import contact_id
from domain.personal import customer_key, erased_address
from domain.reply import Reply
from domain.sidebar import SidebarRecord
from domain.validation import check_email

CHUNK = 200


@dataclass
class Found:
    conversation_ids: list[UUID] = field(default_factory=list)
    message_ids: list[UUID] = field(default_factory=list)
    contact_ids: list[UUID] = field(default_factory=list)
    record_ids: list[UUID] = field(default_factory=list)
    blobs: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Erased:
    customer: str  # the tombstone address that stands for the customer from now on
    conversations: int
    messages: int
    contacts: int
    records: int
    blobs: int
    position: int | None


def erase_customer(services: Services, email: str) -> Erased:
    errors = Collector()
    check_email(errors, ("email",), email.strip())
    errors.raise_if_any()
    address = customer_key(email)
    ring = services.keyring
    person, domain = ring.identity(address)
    services.projections.wait_for(services.projections.head())  # the views know every message stored so far
    found = _find(services, address, ring.owned_by(person))
    deleted = services.blobs.delete_many(found.blobs - _shared(services, found))
    ring.erase(person)
    customer = erased_address(person, domain)
    written = services.app.record_erasure(person, customer, found.conversation_ids, found.message_ids,
                                          found.contact_ids, found.record_ids, deleted)
    services.projections.wait_for(written.position)
    return Erased(customer, len(found.conversation_ids), len(found.message_ids), len(found.contact_ids),
                  len(found.record_ids), deleted, written.position)


def _find(services: Services, address: str, owned: Iterable[UUID]) -> Found:
    database = services.database
    ids = dict.fromkeys(owned)
    # recorded before sealing: found through the views, by address
    for row in database.query("SELECT id FROM rm_conversations WHERE lower(customer_email) = ?", (address,)):
        ids[UUID(str(row["id"]))] = None
    ids[contact_id(address)] = None
    found = Found()
    _classify(services.app, ids, found)
    replies: dict[UUID, None] = {}
    for begin in range(0, len(found.conversation_ids), CHUNK):  # their replies, sealed or not
        part = [str(c) for c in found.conversation_ids[begin:begin + CHUNK]]
        marks = ", ".join("?" for _ in part)
        for row in database.query(f"SELECT id FROM rm_messages WHERE direction = 'OUTBOUND' AND conversation_id "
                                  f"IN ({marks})", part):
            reply_id = UUID(str(row["id"]))
            if reply_id not in ids:
                replies[reply_id] = None
    _classify(services.app, replies, found)
    return found


def _classify(app: Any, aggregate_ids: Iterable[UUID], found: Found) -> None:
    """Reads each aggregate's events once (the key still there): what it is, and its blobs."""
    for aggregate_id in aggregate_ids:
        events: list[Any] = list(app.repository.event_store.get(aggregate_id))
        if not events:
            continue
        first = events[0]
        if isinstance(first, Conversation.Opened):
            found.conversation_ids.append(aggregate_id)
            for e in events:
                if isinstance(e, Conversation.MessageReceived):
                    found.message_ids.append(e.message_id)
                    mail = e.mail
                    found.blobs.update(k for k in (mail.text_blob, mail.headers_blob, mail.html_blob, mail.raw_blob)
                                       if k)
                    found.blobs.update(a.blob for a in mail.attachments if a.blob)
        elif isinstance(first, Reply.Queued):
            found.message_ids.append(aggregate_id)
            found.blobs.update(k for k in (first.mail.text_blob, first.mail.html_blob, first.mail.raw_blob) if k)
        elif isinstance(first, Contact.Created):
            found.contact_ids.append(aggregate_id)
        elif isinstance(first, SidebarRecord.Created):
            found.record_ids.append(aggregate_id)


def _shared(services: Services, found: Found) -> set[str]:
    """Blobs of the customer that another conversation's messages (or a quarantined message) refer to."""
    mine = {str(c) for c in found.conversation_ids}
    keys = sorted(found.blobs)
    shared: set[str] = set()
    columns = ("text_blob", "headers_blob", "html_blob", "raw_blob")
    for begin in range(0, len(keys), CHUNK):
        part = keys[begin:begin + CHUNK]
        marks = ", ".join("?" for _ in part)
        where = " OR ".join(f"{c} IN ({marks})" for c in columns)
        rows = services.database.query(
            f"SELECT conversation_id, {', '.join(columns)} FROM rm_messages WHERE {where}", part * len(columns))
        for row in rows:
            if str(row["conversation_id"]) not in mine:
                shared.update(str(row[c]) for c in columns if row[c] in part)
        quarantined = services.database.query(f"SELECT raw_blob FROM rm_quarantine WHERE raw_blob IN ({marks})",
                                              part)
        shared.update(str(r["raw_blob"]) for r in quarantined)
    for key in keys:  # attachments: JSON in rm_messages; few per customer
        for row in services.database.query("SELECT conversation_id, attachments FROM rm_messages "
                                           "WHERE attachments LIKE ?", (f"%{key}%",)):
            if str(row["conversation_id"]) not in mine and key in str(row["attachments"]):
                shared.add(key)
    return shared
