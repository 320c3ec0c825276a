"""Addresses and display names from header values, read as mail clients read them.

Beyond the RFC 5322 parser: the name in a comment (`addr@example.com (Marc Smith)`), adjacent
encoded-words joined without the whitespace between them (RFC 2047 section 6.2), a domain with a
trailing dot, a quoted local part with spaces (`"Millions Lottery Spain transfer"@example.com>`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_EW = r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?="
_ADJACENT_EW = re.compile(rf"({_EW})[ \t]+(?={_EW})")
_TRAILING_DOT = re.compile(r"(@[^\s<>@,;:\"()\[\]]+?)\.+(?=[ \t]*(?:>|,|;|\(|$))")
_LENIENT = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+")
_QUOTED_LOCAL = re.compile(r'^"[^"\\\r\n]*"$')
_BARE_LOCAL = re.compile(r"^\s*(?:\"?([^\"<>()@,;:\s]*(?:[ ][^\"<>()@,;:\s]+)*)\"?\s*)?(?:<\s*>)?\s*(?:\((.*)\))?\s*$")

Decode = Callable[[str], str]
Factory = Callable[[str, str], Any]


def join_encoded_words(value: str) -> str:
    """RFC 2047 section 6.2: linear whitespace between two adjacent encoded-words is not displayed."""
    return _ADJACENT_EW.sub(r"\1", value) if "?=" in value else value


def usable(address: str) -> bool:
    """local@domain, both non-empty, no whitespace (except inside a quoted local part)."""
    local, at, domain = address.rpartition("@")
    if not at or not local.strip() or not domain.strip() or re.search(r"\s", domain):
        return False
    return not re.search(r"\s", local) or bool(_QUOTED_LOCAL.match(local))


def parse_addresses(name: str, value: str, factory: Factory, decode: Decode) -> list[tuple[str, str | None]]:
    """(lower-cased addr-spec, display name) of each usable address in one header value, in order.
    The display name is the phrase, else a comment next to the address, encoded-words decoded."""
    value = _TRAILING_DOT.sub(r"\1", join_encoded_words(value))
    try:
        header: Any = factory(name, value)
        parsed = [(str(a.addr_spec), str(a.display_name)) for a in header.addresses]
    except Exception:
        parsed = []
    found = []
    for address, phrase in parsed:
        address = address.strip()
        if not usable(address):
            continue
        if re.search(r"\s", address) and address.lower() not in value.lower():
            continue  # `Big Bug bb@bug.com`: words before an address, not a quoted local part
        display = phrase.strip() or _comment_near(value, address, decode)
        found.append((address.lower(), display or None))
    if not found:  # lenient fallback for values the RFC parser gives up on
        found = [(a.lower().rstrip("."), None) for a in _LENIENT.findall(value)]
    return found


def _comment_near(value: str, address: str, decode: Decode) -> str:
    """`addr@example.com (Marc Smith)` or `(Marc Smith) addr@example.com`: the comment is the name."""
    where = value.lower().find(address.lower())
    if where < 0:
        return ""
    after = re.match(r"\s*>?\s*\(([^()]*)\)", value[where + len(address) :])
    before = re.search(r"\(([^()]*)\)\s*<?\s*$", value[:where])
    comment = (after or before)[1] if (after or before) else ""  # type: ignore[index]
    return " ".join(decode(comment).split())


def bare_sender(value: str, decode: Decode) -> tuple[str, str | None] | None:
    """A From without a domain, as bounces write it: `MAILER-DAEMON (Mail Delivery System)`,
    `MAILER DAEMON <>`, `postmaster`: (local part or "", the name or comment or None); None when
    the value is anything else."""
    found = _BARE_LOCAL.match(join_encoded_words(value))
    if not found or not (found[1] or found[2]):
        return None
    words, comment = (found[1] or "").strip(), " ".join(decode(found[2] or "").split())
    if "<" in value:  # `MAILER DAEMON <>`: the words are a name, there is no address
        return "", " ".join(decode(words).split()) or comment or None
    local = words if " " not in words else ""
    return local, comment or (None if local else words or None)
