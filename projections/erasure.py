"""The views' side of erasing a customer (domain/personal.py): on `Erasure.Erased`, each view
puts in place of the customer's rows what a rebuild from the log would now give (the events'
personal fields read as tombstones, their blobs gone): the conversations stay, with their
statuses, assignments and counts, but nothing of what the customer wrote or was called."""

from __future__ import annotations

from collections.abc import Sequence

from domain.customers import Erasure
from domain.personal import ERASED_TEXT
from projections.tables import Rows, Table

Erased = Erasure.Erased


def _ids(ids: Sequence[object]) -> list[str]:
    return [str(i) for i in ids]


def conversations(e: Erased, rows: Rows, conversations: Table, messages: Table) -> None:
    for cid in _ids(e.conversation_ids):
        if rows.get(conversations, cid) is not None:
            rows.update(conversations, cid, subject=ERASED_TEXT, customer_email=e.customer)
    for mid in _ids(e.message_ids):
        row = rows.get(messages, mid)
        if row is None:
            continue
        inbound = row["direction"] == "INBOUND"
        rows.update(messages, mid, subject=ERASED_TEXT, text="", to_addresses="[]", cc_addresses="[]",
                    attachments="[]", **({"from_address": e.customer, "from_name": None} if inbound else {}))


def contacts(e: Erased, rows: Rows, contacts: Table) -> None:
    for contact in _ids(e.contact_ids):
        if rows.get(contacts, contact) is not None:
            rows.update(contacts, contact, email=e.customer, name=None)


def records(e: Erased, rows: Rows, records: Table) -> None:
    for record in _ids(e.record_ids):
        row = rows.get(records, record)
        if row is None:
            continue
        by_address = {"customer_email": e.customer, "email_domain": e.customer.rpartition("@")[2]}
        rows.update(records, record, title=ERASED_TEXT, fields="{}", url=None,
                    **(by_address if row["customer_email"] else {}))


def customers(e: Erased, rows: Rows, customers: Table, last_handler: Table) -> None:
    """The workload view's customer of each conversation, and the customer's last handler."""
    for cid in _ids(e.conversation_ids):
        row = rows.get(customers, cid)
        if row is None or row["customer_email"] == e.customer:
            continue
        email = row["customer_email"]
        rows.update(customers, cid, customer_email=e.customer)
        handler = rows.get(last_handler, email)
        if handler is not None:
            rows.delete(last_handler, email)
            kept = rows.get(last_handler, e.customer)
            if kept is None or str(kept["at"] or "") < str(handler["at"] or ""):
                rows.put(last_handler, {**handler, "customer_email": e.customer})

