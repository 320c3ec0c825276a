"""Accounts and contacts: upserts, owners must be agents."""

from __future__ import annotations

from uuid import UUID

from domain.agents import Agent
from domain.commands.base import KEEP, Base, Keep, Written, retrying
from domain.customers import Account, Contact, Erasure
from domain.errors import Collector, not_found
from domain.validation import check_domain, check_email, check_name, normalise_email

MAX_DOMAINS = 100


class CustomerCommands(Base):
    def _check_owner(self, field: tuple[str, ...], owner_id: UUID | Keep | None) -> None:
        if isinstance(owner_id, UUID) and not isinstance(self._find(owner_id), Agent):
            raise not_found(field, f"agent {owner_id}")

    @retrying()
    def upsert_account(
        self,
        account_id: UUID | None,
        name: str,
        domains: list[str],
        owner_id: UUID | Keep | None = KEEP,
    ) -> Written:
        given = [d.strip().lower() for d in domains]  # problem paths index the caller's list
        domains = list(dict.fromkeys(given))
        errors = Collector()
        check_name(errors, ("input", "name"), name)
        if len(domains) > MAX_DOMAINS:
            errors.add(("input", "domains"), f"at most {MAX_DOMAINS} domains")
        for i, domain in enumerate(given):
            check_domain(errors, ("input", "domains", str(i)), domain)
        errors.raise_if_any()
        self._check_owner(("input", "ownerId"), owner_id)
        if account_id is None:
            owner = None if isinstance(owner_id, Keep) else owner_id
            account = Account(name=name.strip(), domains=domains, owner_id=owner)
        else:
            account = self._load(Account, account_id, ("input", "id"), "account")
            if (name.strip(), domains) != (account.name, account.domains):
                account.update(name.strip(), domains)
            if not isinstance(owner_id, Keep) and owner_id != account.owner_id:
                account.change_owner(owner_id)
        return Written(account.id, self._store(account))

    @retrying()
    def upsert_contact(
        self,
        email: str,
        name: str | Keep | None = KEEP,
        account_id: UUID | Keep | None = KEEP,
        owner_id: UUID | Keep | None = KEEP,
    ) -> Written:
        email = normalise_email(email)
        errors = Collector()
        check_email(errors, ("input", "email"), email)
        if isinstance(name, str):
            check_name(errors, ("input", "name"), name)
        errors.raise_if_any()
        self._check_owner(("input", "ownerId"), owner_id)
        if isinstance(account_id, UUID):
            self._load(Account, account_id, ("input", "accountId"), "account")
        contact = self._find(Contact.create_id(email))
        if contact is None:
            contact = Contact(
                email=email,
                name=None if isinstance(name, Keep) else (name.strip() if name else None),
                account_id=None if isinstance(account_id, Keep) else account_id,
                owner_id=None if isinstance(owner_id, Keep) else owner_id,
            )
        else:
            new_name = contact.name if isinstance(name, Keep) else (name.strip() if name else None)
            new_account = contact.account_id if isinstance(account_id, Keep) else account_id
            if (new_name, new_account) != (contact.name, contact.account_id):
                contact.update(new_name, new_account)
            if not isinstance(owner_id, Keep) and owner_id != contact.owner_id:
                contact.change_owner(owner_id)
        return Written(contact.id, self._store(contact))

    @retrying()
    def record_erasure(self, person: str, customer: str, conversation_ids: list[UUID], message_ids: list[UUID],
                       contact_ids: list[UUID], record_ids: list[UUID], blobs: int) -> Written:
        """Records that a customer's key and blobs are gone (api/erasure.py did that first)."""
        erasure = self._find(Erasure.create_id(person))
        if not isinstance(erasure, Erasure):
            erasure = Erasure(person)
        erasure.erase(person, customer, conversation_ids, message_ids, contact_ids, record_ids, blobs)
        return Written(erasure.id, self._store(erasure))
