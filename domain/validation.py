"""Pure input checks shared by the aggregates' commands."""

from __future__ import annotations

import ipaddress
import re

from domain.errors import Collector
from domain.values import MailProtocol, ServerSettings, TransportSecurity

# Every character str.splitlines() breaks on, and NUL: none may reach a header value.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029\x00")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^[^@\s<>\"]+@{_LABEL}(?:\.{_LABEL})+$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value)) and len(value) <= 254


def normalise_email(value: str) -> str:
    """Addresses compare case-insensitively; keep one canonical spelling."""
    return value.strip().lower()


def check_email(errors: Collector, field: tuple[str, ...], value: str) -> None:
    if not is_email(value.strip()):
        errors.add(field, f"'{value}' is not an email address")


def check_name(errors: Collector, field: tuple[str, ...], value: str, limit: int = 200) -> None:
    if not value.strip():
        errors.add(field, "must not be empty")
    elif len(value) > limit:
        errors.add(field, f"must be at most {limit} characters")
    elif any(ch in LINE_BREAKS for ch in value):  # names go into headers (a mailbox's From)
        errors.add(field, "must not contain line breaks (CR, LF, U+2028, U+2029, U+0085 or others)")


def check_domain(errors: Collector, field: tuple[str, ...], value: str) -> None:
    if not _DOMAIN.match(value.strip().lower()):
        errors.add(field, f"'{value}' is not a domain name")


def is_host(value: str) -> bool:
    """A DNS name or an IP address literal (IPv6 with or without brackets)."""
    try:
        ipaddress.ip_address(value.removeprefix("[").removesuffix("]"))
    except ValueError:
        return bool(_HOST_NAME.match(value)) and ".." not in value
    return True


def check_server(errors: Collector, field: tuple[str, ...], settings: ServerSettings) -> None:
    if settings.host != settings.host.strip() or not is_host(settings.host):
        errors.add((*field, "host"), f"'{settings.host}' is not a host name")
    if not 1 <= settings.port <= 65535:
        errors.add((*field, "port"), f"port {settings.port} is out of range 1-65535")
    if not settings.username.strip() or any(ch in settings.username for ch in "\r\n\x00"):
        errors.add((*field, "username"), "must not be empty or contain line breaks")


Connection = tuple[MailProtocol, ServerSettings | None, ServerSettings | None]  # protocol, incoming, outgoing


def _endpoint(settings: ServerSettings | None) -> tuple[str, int, TransportSecurity] | None:
    return None if settings is None else (settings.host.lower().rstrip("."), settings.port, settings.security)


def check_destination(errors: Collector, password: object, old: Connection, new: Connection,
                      given: tuple[object, object]) -> None:
    """The stored password goes only to the servers it was given for: a new host, port,
    security or protocol (incoming, or an outgoing server added or moved) needs the password in
    the same request, and plaintext (NONE) for a new destination must be chosen in it too,
    never inherited from the stored settings."""
    moved_in = (old[0], _endpoint(old[1])) != (new[0], _endpoint(new[1]))
    moved_out = new[2] is not None and _endpoint(old[2]) != _endpoint(new[2])
    if (moved_in or moved_out) and not isinstance(password, str):
        errors.add(("input", "password"), "is required again when the server, port, security or "
                   "protocol changes: the stored password is only sent where it was given for",
                   "PASSWORD_REQUIRED")
    for moved, settings, sent, name in ((moved_in, new[1], given[0], "incoming"),
                                        (moved_out, new[2], given[1], "outgoing")):
        if moved and settings is not None and settings.security is TransportSecurity.NONE \
                and not isinstance(sent, ServerSettings):
            errors.add(("input", name, "security"), "plaintext (NONE) for a new server must be "
                       "chosen explicitly in the same request")
