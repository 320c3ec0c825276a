"""A customer's personal data in the log, and what stands in for it once the customer is erased.

Events keep what a customer wrote about themselves (address, name, subjects, recipients, a
delivery server's reason naming them) sealed under that customer's own key, kept outside the
log (adapters/keyring.py, adapters/sealing.py). Erasing the customer deletes the key: the events
stay, byte for byte (the audit chain covers them as stored), but read back they hold tombstones.

A tombstone must still let the decisions be decided again (the assigner keys its figures by the
customer's address, and matches an address's domain to an account): an erased address reads as
`erased-<person>@<domain>.erased.invalid`, where <person> and <domain> are keyed pseudonyms
(HMAC) of the lower-cased address and of its domain. The same customer gets the same pseudonym
in every event, two customers never share one, and nobody without the key can tell who it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

ERASED_SUFFIX = ".erased.invalid"  # RFC 2606: .invalid never resolves
ERASED_TEXT = "(erased)"


def erased_address(person: str, domain: str) -> str:
    """The tombstone of an address: `person` and `domain` are the pseudonyms of its two parts."""
    return f"erased-{person}@{domain}{ERASED_SUFFIX}"


def erased_domain(domain: str) -> str:
    """The tombstone of an address's domain (what an account's domain is compared with)."""
    return f"{domain}{ERASED_SUFFIX}"


def is_erased(address: str) -> bool:
    return address.endswith(ERASED_SUFFIX)


def customer_key(address: str) -> str:
    """Whose key an address is: the lower-cased address without surrounding blanks."""
    return address.strip().lower()


class Kind:
    """How a sealed value reads once its key is gone."""

    ADDRESS = "address"  # the customer's pseudonymous address
    TEXT = "text"  # ERASED_TEXT
    OPTIONAL = "optional"  # None
    LIST = "list"  # []
    JSON = "json"  # "{}" (a JSON object as text)


def tombstone(kind: str, person: str, domain: str) -> Any:
    if kind == Kind.ADDRESS:
        return erased_address(person, domain)
    if kind == Kind.OPTIONAL:
        return None
    if kind == Kind.LIST:
        return []
    if kind == Kind.JSON:
        return "{}"
    return ERASED_TEXT


@dataclass(frozen=True, slots=True)
class Personal:
    """A value of a customer's personal data on its way into the log: sealed when stored, read
    back as the value (the key is there) or as its tombstone (erased). `person` and `domain` are
    the pseudonyms of the customer's address (whose key seals it) and of its domain."""

    person: str
    domain: str
    kind: str
    value: Any


class Pseudonyms(Protocol):
    """The keyed pseudonyms of addresses and domains (adapters/keyring.py holds the key)."""

    def identity(self, address: str) -> tuple[str, str]: ...
    def domain_pseudonym(self, domain: str) -> str: ...
