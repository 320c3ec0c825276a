"""Helpers for the intake fault tests: bulk delivery to the private Dovecot, counting what
the event log holds, checking the read models against a rebuild, and odd-sized mails."""

from __future__ import annotations

import base64
import os
import poplib
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from api.bootstrap import Services
from domain.values import MailProtocol, ServerSettings, TransportSecurity
from projections import rebuild
from tests.dovecot import Dovecot, LoopbackProxy

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
NOT_MAIL = {"SOURCES.md", "INVENTORY.tsv", ".gitattributes"}
PASSWORD = "s3cret-pass"


def corpus_files() -> list[Path]:
    """Every mail of the shared corpus (all files but its three description files), sorted."""
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in NOT_MAIL)


def new_user(dovecot: Dovecot, password: str = PASSWORD) -> str:
    name = f"f{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, password)
    return name


def bind_at(services: Services, dovecot: Dovecot, user: str, *, port: int | None = None,
            protocol: MailProtocol = MailProtocol.IMAP, password: str = PASSWORD,
            address: str | None = None) -> uuid.UUID:
    """Binds `user`'s mailbox (plain transport on loopback), optionally through another port."""
    if port is None:
        port = dovecot.imap_port if protocol is MailProtocol.IMAP else dovecot.pop3_port
    written, _ = services.app.bind_mailbox(
        address or f"{user}@example.com", password, None, protocol,
        ServerSettings(dovecot.host, port, TransportSecurity.NONE, user))
    services.projections.wait_for(written.position)
    return written.id


def append_many(dovecot: Dovecot, user: str, raws: Iterable[bytes], folder: str = "INBOX",
                password: str = PASSWORD) -> list[int]:
    """Delivers every message by IMAP APPEND over one connection; returns the new UIDs in order
    (Dovecot answers APPENDUID). Much faster than `Dovecot.append` per message."""
    client = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=60)
    uids = []
    try:
        client.login(user, password)
        for raw in raws:
            response = client.append(folder, raw)
            text = response.decode() if isinstance(response, bytes) else str(response)
            match = re.search(r"\[APPENDUID \d+ (\d+)\]", text)
            assert match, f"no APPENDUID in {text!r}"
            uids.append(int(match.group(1)))
    finally:
        client.logout()
    return uids


def served(dovecot: Dovecot, user: str, password: str = PASSWORD, folder: str = "INBOX") -> dict[int, bytes]:
    """UID -> the message bytes as the server serves them (CRLF line ends, NUL as 0x80)."""
    client = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=60)
    try:
        client.login(user, password)
        client.select_folder(folder, readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
        return {int(uid): bytes(data[b"BODY[]"]) for uid, data in fetched.items()}
    finally:
        client.logout()


class _LongLinePOP3(poplib.POP3):
    """poplib refuses lines over 2048 bytes; the corpus has a 200 kB header line."""

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline()
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


def served_pop3(dovecot: Dovecot, user: str, password: str = PASSWORD) -> dict[str, bytes]:
    """UIDL -> the message bytes as RETR serves them (every line ended with CRLF; NUL kept)."""
    conn = _LongLinePOP3(dovecot.host, dovecot.pop3_port, timeout=60)
    try:
        conn.user(user)
        conn.pass_(password)
        out = {}
        for line in conn.uidl()[1]:
            number, uidl = line.split()
            out[uidl.decode()] = b"".join(part + b"\r\n" for part in conn.retr(int(number))[1])
        return out
    finally:
        conn.quit()


def uidvalidity(dovecot: Dovecot, user: str, password: str = PASSWORD, folder: str = "INBOX") -> int:
    client = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=30)
    try:
        client.login(user, password)
        return int(client.select_folder(folder, readonly=True)[b"UIDVALIDITY"])
    finally:
        client.logout()


class Proxy(LoopbackProxy):
    """LoopbackProxy that can also be thawed after `freeze()`."""

    def thaw(self) -> None:
        self.cut()  # the frozen connections have lost data: drop them
        self._frozen.clear()


# ----------------------------------------------------------------- the event log and the views


def events_table(services: Services) -> str:
    return str(services.app.recorder.events_table_name)  # type: ignore[attr-defined]


def count_topic(services: Services, topic: str, originator_id: uuid.UUID | None = None) -> int:
    """How many stored events have this topic (optionally of one aggregate)."""
    sql = f"SELECT COUNT(*) AS n FROM {events_table(services)} WHERE topic = ?"
    params: list[Any] = [topic]
    if originator_id is not None:
        # Both recorders store the id as text in SQLite, as uuid in PostgreSQL.
        sql += " AND originator_id = ?"
        params.append(originator_id if services.database.is_postgres else originator_id.hex)
    return int(services.database.query(sql, params)[0]["n"])


def count_rows(services: Services, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
    sql = f"SELECT COUNT(*) AS n FROM {table}" + (f" WHERE {where}" if where else "")
    return int(services.database.query(sql, params)[0]["n"])


def messages_of(services: Services, mailbox_id: uuid.UUID) -> list[dict[str, Any]]:
    return services.database.query("SELECT * FROM rm_messages WHERE mailbox_id = ? ORDER BY source",
                                   (str(mailbox_id),))


def verify_views(services: Services) -> dict[str, list[str]]:
    """`mailroom projections verify`: each view's differences from a rebuild (all empty: clean)."""
    return {name: rebuild.verify(services.projections, view) for name, view in services.projections.views.items()}


# ----------------------------------------------------------------- mails


def plain(n: int, tag: str, *, body: str | None = None, message_id: str | None = None,
          in_reply_to: str | None = None, sender: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {n} <{sender or f'c{n}@customer.example'}>"
    message["To"] = "support@example.com"
    message["Subject"] = f"{tag} question {n}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(idstring=f"{tag}.{n}", domain="customer.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body or f"Hello, this is message {n} of {tag}.\n")
    return bytes(message)


def padded(n: int, tag: str, size: int) -> bytes:
    """A plain mail whose body makes it about `size` bytes (printable, so the server keeps it)."""
    line = "All work and no play makes Jack a dull boy. 0123456789 abcdefghijklmnop\n"
    return plain(n, tag, body=line * max(1, size // len(line)))


def huge_attachment(total_bytes: int) -> bytes:
    """A mail of about `total_bytes` (CRLF form), nearly all of it one base64 attachment.

    Written by hand (not EmailMessage) so that building it does not hold several copies."""
    head = (
        "From: Big Sender <big@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: A very large scan\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: {make_msgid(idstring='huge', domain='customer.example')}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b-huge\"\r\n\r\n"
        "--b-huge\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe scan is attached.\r\n"
        "--b-huge\r\nContent-Type: application/octet-stream; name=\"scan.bin\"\r\n"
        "Content-Disposition: attachment; filename=\"scan.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    tail = b"\r\n--b-huge--\r\n"
    lines = (total_bytes - len(head) - len(tail)) // 78 + 1  # 76 characters + CRLF per line
    chunk = os.urandom(57 * 1024)  # 57 bytes -> one 76-character line
    encoded = base64.encodebytes(chunk).replace(b"\n", b"\r\n")
    per_chunk = 1024
    repeats, rest = divmod(lines, per_chunk)
    return head + encoded * repeats + encoded[: rest * 78] + tail


def many_attachments(count: int) -> tuple[bytes, list[bytes]]:
    """A mail with `count` small attachments, each with different content; and those contents."""
    message = EmailMessage()
    message["From"] = "Many Files <files@customer.example>"
    message["To"] = "support@example.com"
    message["Subject"] = f"{count} receipts"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(idstring="many", domain="customer.example")
    message.set_content("All the receipts, one file each.\n")
    contents = []
    for i in range(count):
        data = f"receipt {i:03d}\n".encode() + os.urandom(256)
        contents.append(data)
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=f"receipt-{i:03d}.bin")
    return bytes(message), contents
