"""Sealing customers' personal data in events as they are stored (domain/personal.py).

`SealingMapper` wraps the personal fields of the events listed in RULES as `Personal` values
before transcoding; the `sealed` transcoding encrypts each with its customer's key (AES-256-GCM,
the key's id as associated data) and, read back, decrypts it, or answers its tombstone when the
key is gone. Whose key seals an event: the customer it names (a conversation opened, a contact
created), or the owner the keyring recorded for its aggregate (later messages of a conversation,
its replies, their delivery reasons). Events recorded before sealing existed stay as they were.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Cipher, Compressor, JSONTranscoder, Mapper, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic

from adapters.keyring import Keyring
from domain.personal import Kind, Personal, tombstone

SEALING_MAPPER_TOPIC = "adapters.sealing:SealingMapper"
OPENED_KEPT = 50_000
_MISSING = object()
A, T, OPT, L, J = Kind.ADDRESS, Kind.TEXT, Kind.OPTIONAL, Kind.LIST, Kind.JSON
Who = tuple[str, str]  # (person, domain) pseudonyms


class SealedValue(Transcoding):
    type = Personal
    name = "sealed"

    def __init__(self, transcoder: Transcoder) -> None:
        self.transcoder = transcoder
        self.keyring: Keyring | None = None  # given when the database is there (api/bootstrap.py)
        self._opened: dict[str, Any] = {}  # ciphertext -> value, while its key lives

    def encode(self, obj: Personal) -> dict[str, str]:
        assert self.keyring is not None, "personal data sealed without a keyring"
        key_id, key = self.keyring.sealing_key(obj.person)  # cached; checked when the event is stored
        nonce = os.urandom(12)
        sealed = nonce + key.encrypt(nonce, self.transcoder.encode(obj.value), key_id.encode())
        return {"i": key_id, "p": obj.person, "d": obj.domain, "k": obj.kind, "c": base64.b64encode(sealed).decode()}

    def decode(self, data: dict[str, str]) -> Any:
        key = self.keyring.opening_key(data["i"]) if self.keyring is not None else None
        if key is None:
            return tombstone(data["k"], data["p"], data["d"])
        # Every view decodes every event: a value opened once is kept (by its ciphertext, unique
        # by its nonce) while its key lives; the key is looked up first, so erasure still wins.
        value = self._opened.get(data["c"], _MISSING)
        if value is _MISSING:
            sealed = base64.b64decode(data["c"])
            value = self.transcoder.decode(key.decrypt(sealed[:12], sealed[12:], data["i"].encode()))
            if len(self._opened) >= OPENED_KEPT:
                self._opened.clear()
            self._opened[data["c"]] = value
        return list(value) if isinstance(value, list) else value


# ---------------------------------------------------------------------- which fields, whose key


def _wrap(who: Who, value: Any, kind: str) -> Personal:
    return Personal(who[0], who[1], kind, value)


def _fields(state: dict[str, Any], who: Who, **kinds: str) -> None:
    for name, kind in kinds.items():
        if name in state:
            state[name] = _wrap(who, state[name], kind)


def _record(record: Any, who: Who, **kinds: str) -> Any:
    """A copy of a frozen record with these fields wrapped (the transcoding reads them by name)."""
    wrapped = {name: _wrap(who, getattr(record, name), kind) for name, kind in kinds.items()}
    return dataclasses.replace(record, **wrapped)


def _opened(ring: Keyring, oid: UUID, state: dict[str, Any]) -> None:
    who = ring.identity(state["customer_email"])
    ring.own(oid, *who)
    _fields(state, who, customer_email=A, subject=T)


def _received(ring: Keyring, oid: UUID, state: dict[str, Any]) -> None:
    mail = state["mail"]
    who = ring.owner(oid) or ring.identity(mail.from_address)  # a conversation opened before sealing: its sender
    state["mail"] = _record(mail, who, from_address=A, from_name=OPT, to=L, cc=L, subject=T, attachments=L)


def _reply_queued(ring: Keyring, oid: UUID, state: dict[str, Any]) -> None:
    mail = state["mail"]
    who = ring.owner(state["conversation_id"]) or ring.identity(mail.to[0] if mail.to else "")
    ring.own(oid, *who)
    state["mail"] = _record(mail, who, to=L, cc=L, subject=T)


def _owned(**kinds: str) -> Callable[[Keyring, UUID, dict[str, Any]], None]:
    """Later events of an aggregate with an owner (none: recorded before sealing, kept plain)."""

    def seal(ring: Keyring, oid: UUID, state: dict[str, Any]) -> None:
        who = ring.owner(oid)
        if who is not None:
            _fields(state, who, **kinds)

    return seal


def _contact_created(ring: Keyring, oid: UUID, state: dict[str, Any]) -> None:
    who = ring.identity(state["email"])
    ring.own(oid, *who)
    _fields(state, who, email=A, name=OPT)


def _sidebar_record(ring: Keyring, oid: UUID, state: dict[str, Any]) -> None:
    """A record about one customer (by address or contact); an account's or a domain's is the company's."""
    data = state["data"]
    who = (ring.identity(data.customer_email) if data.customer_email
           else ring.owner(data.contact_id) if data.contact_id else None)
    if who is None:
        return
    ring.own(oid, *who)
    kinds = {"title": T, "fields_json": J, "url": OPT} | ({"customer_email": A} if data.customer_email else {})
    state["data"] = _record(data, who, **kinds)


RULES: dict[str, Callable[[Keyring, UUID, dict[str, Any]], None]] = {
    "mailroom:Conversation.Opened": _opened,
    "mailroom:Conversation.MessageReceived": _received,
    "mailroom:Reply.Queued": _reply_queued,
    "mailroom:Reply.Sent": _owned(response=T),
    "mailroom:Reply.Deferred": _owned(reason=T),
    "mailroom:Reply.Failed": _owned(reason=T),
    "mailroom:Reply.Bounced": _owned(reason=T),
    "mailroom:Contact.Created": _contact_created,
    "mailroom:Contact.Updated": _owned(name=OPT),
    "mailroom:SidebarRecord.Created": _sidebar_record,
    "mailroom:SidebarRecord.Updated": _sidebar_record,
}


class SealingMapper(Mapper[UUID]):
    """eventsourcing's Mapper, with the personal fields of RULES' events sealed on the way in.
    Chosen by the environment (MAPPER_TOPIC, set by api/bootstrap.py); `use` gives it the keyring."""

    def __init__(self, transcoder: Transcoder, compressor: Compressor | None = None,
                 cipher: Cipher | None = None) -> None:
        super().__init__(transcoder, compressor, cipher)
        assert isinstance(transcoder, JSONTranscoder)
        self.sealed = SealedValue(transcoder)
        transcoder.register(self.sealed)
        self.keyring: Keyring | None = None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        rule = RULES.get(get_topic(domain_event.__class__))
        if rule is None or self.keyring is None:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        rule(self.keyring, state["originator_id"], state)
        # the same event with its personal fields wrapped (as eventsourcing's to_domain_event builds one)
        sealed = object.__new__(type(domain_event))
        object.__setattr__(sealed, "__dict__", state)
        return super().to_stored_event(sealed)

    def use(self, keyring: Keyring) -> None:
        """From now on, personal data is sealed (and opened) with this keyring."""
        self.keyring = self.sealed.keyring = keyring
