"""What the sidebar reads, batched over a page of conversations: the enabled sources, who each
customer is (contact, account: the contact's account, else the account of the email's domain,
as DESIGN 4 matches them), and the pushed records by each match key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adapters.database import Database, Row
from domain.ids import contact_id
from projections import directory as d
from projections.queries import any_of
from projections.sidebar import RECORDS, SOURCES


@dataclass(frozen=True)
class Customer:
    """The values a source matches on (None where mailroom knows none)."""

    email: str
    domain: str
    contact_id: str | None  # only for a contact mailroom knows
    account_id: str | None

    def key(self, match_by: str) -> str | None:
        return {"CUSTOMER_EMAIL": self.email, "EMAIL_DOMAIN": self.domain, "CONTACT": self.contact_id,
                "ACCOUNT": self.account_id}.get(match_by)

    def placeholders(self) -> dict[str, str | None]:
        return {"customer_email": self.email, "email_domain": self.domain, "contact_id": self.contact_id,
                "account_id": self.account_id}


_COLUMN = {"CUSTOMER_EMAIL": "customer_email", "EMAIL_DOMAIN": "email_domain", "CONTACT": "contact_id",
           "ACCOUNT": "account_id"}


class SidebarQueries:
    def __init__(self, database: Database) -> None:
        self.db = database

    def sources(self, enabled_only: bool = False) -> list[Row]:
        where = " WHERE enabled = 1" if enabled_only else ""
        return self.db.query(f"SELECT * FROM {SOURCES.name}{where} ORDER BY position, created_at, id")

    def source(self, source_id: str) -> Row | None:
        rows = self.db.query(f"SELECT * FROM {SOURCES.name} WHERE id = ?", (source_id,))
        return rows[0] if rows else None

    def record(self, record_id: str) -> Row | None:
        rows = self.db.query(f"SELECT * FROM {RECORDS.name} WHERE id = ? AND deleted = 0", (record_id,))
        return rows[0] if rows else None

    def customers(self, emails: Iterable[str]) -> dict[str, Customer]:
        """Each email's contact and account, in two statements for the whole page."""
        emails = list(dict.fromkeys(e.lower() for e in emails))
        by_contact = {str(contact_id(e)): e for e in emails}
        where, params = any_of(self.db, "id", by_contact)
        contacts = {by_contact[str(r["id"])]: r for r in self.db.query(
            f"SELECT id, account_id FROM {d.CONTACTS.name} WHERE {where}", params)}
        domains = {e: e.rpartition("@")[2] for e in emails}
        where, params = any_of(self.db, "domain", set(domains.values()))
        by_domain: dict[str, str] = {}
        for row in self.db.query(f"SELECT domain, account_id FROM {d.ACCOUNT_DOMAINS.name} WHERE {where} "
                                 "ORDER BY account_id", params):
            by_domain.setdefault(str(row["domain"]), str(row["account_id"]))
        out = {}
        for email in emails:
            contact = contacts.get(email)
            account = contact["account_id"] if contact is not None and contact["account_id"] else None
            out[email] = Customer(email, domains[email], None if contact is None else str(contact["id"]),
                                  str(account) if account else by_domain.get(domains[email]))
        return out

    def records(self, record_type: str, match_by: str, keys: Iterable[str], limit: int = 100
                ) -> dict[str, list[Row]]:
        """The live records of a type whose match column is one of `keys`, newest first, by key."""
        column = _COLUMN[match_by]
        where, params = any_of(self.db, column, keys)
        out: dict[str, list[Row]] = {}
        for row in self.db.query(
                f"SELECT * FROM {RECORDS.name} WHERE record_type = ? AND deleted = 0 AND {where} "
                "ORDER BY updated_at DESC, external_id", [record_type, *params]):
            found = out.setdefault(str(row[column]), [])
            if len(found) < limit:
                found.append(row)
        return out
