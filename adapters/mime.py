"""Raw RFC 5322 bytes -> ParsedMail, with the standard library's `email` package (policy.default).

Never raises for bad charsets, 8-bit headers or broken MIME; a message that cannot become a
conversation at all raises Unparseable with a short reason for the admins (it is quarantined).
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import quopri
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from html import escape
from io import BytesIO
from itertools import islice, takewhile
from typing import Any, cast

from adapters.addresses import bare_sender, parse_addresses
from adapters.charsets import ENCODED_WORD_ALIASES, decode_bytes, decode_header_bytes
from adapters.charsets import clean as _clean
from adapters.headerblock import repair_header_block
from adapters.html import html_to_text, sanitize_html
from domain.mail import BounceReport, normalise_message_id

MAX_HEADERS = 200
MAX_HEADER_CHARS = 2_000
_MAX_PARSED_CHARS = 32_768  # the stdlib header parsers are quadratic on long values: a 650 KB Subject takes 13 s
_BULK = {"bulk", "junk", "list"}
_DSN_TYPES = {"message/delivery-status", "message/global-delivery-status"}
_SURROGATES = re.compile("[\ud800-\udfff]")
_ENCODED_WORD_CHARSET = re.compile(r"=\?([^?*\s]+)(?=[*?])")
_BOUNDARY = re.compile(r"\bboundary\s*=\s*(?:\"([^\"]+)\"|([^\s;\"]+))", re.I)

# --- delivery reports and auto-replies (see _bounce and _is_autoreply) ---
# The parts a report returns the original in: whole, or its header section only (RFC 3462, RFC 6533).
_RETURNED_TYPES = {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers",
                   "message/global-headers"}
# DSN Actions that are no failure: a delay warning or a success notice (RFC 3464 2.3.3).
_NOT_FAILED = {"delayed", "delivered", "relayed", "expanded"}
_DAEMONS = {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster"}
# Subjects mail servers give their non-standard bounces (Postfix, Exim, qmail, sendmail, Exchange, Gmail,
# Domino, ...). Anchored at the start: a customer's "Re: delivery failed for my order" is not one.
_BOUNCE_SUBJECT = re.compile(
    r"\s*(?:warning:\s*)?(?:undeliver|unzustellbar|nicht zustellbar|non remis|non recapitabile|no se puede entregar"
    r"|failure notice|returned mail|delayed mail|mail system error|could not send message"
    r"|(?:message |mail )?delivery (?:status notification|failure|failed|has failed|notification|delayed|problem)"
    r"|mail delivery (?:failed|failure|problem|subsystem|system)|(?:message |mail )?(?:not|could not be) delivered"
    r"|non[- ]?delivery)", re.I)
# A bounce that is only a warning: the server is still trying (no DSN part says so, the subject does).
_DELAY_SUBJECT = re.compile(r"\bdelay|still being retried|could not send message for past|warning:|verz(?:ö|oe)gert",
                            re.I)
# "Message-ID: <...>" lines of original headers quoted in a bounce's text (indented or ">"-quoted too);
# only these lines: a bounce names addresses in <...@...> too, which are no Message-IDs.
_QUOTED_ID = re.compile(r"^[ \t>]*message-id:[ \t]*(?:\r?\n[ \t]+)?<([^<>\s]+@[^<>\s]+)>", re.I | re.M)
_HEADER_ID = re.compile(r"^message-id:[ \t]*((?:[^\r\n]*)(?:\r?\n[ \t]+[^\r\n]*)*)", re.I | re.M)
_DSN_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9-]*)[ \t]*:(.*)")
_ADDRESS_TYPE = re.compile(r"^\s*[A-Za-z][\w-]*\s*;\s*")  # "smtp; 550 ...", "rfc822; a@example.com"
# The server's words in a bounce's text: a reply code with an enhanced status anywhere on a line
# ("550 5.1.1 <a@example.com>: User unknown"), or a bare reply code where servers quote one.
_SMTP_REPLY = re.compile(r"(?<![\w.])[45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b"
                         r"|(?:^|said:|error:|returned|response:|reply:)\s*['\"(]?[45]\d\d[ -]\S", re.I)
# Where a bounce's text stops being the server's and becomes the returned message.
_RETURNED_TEXT = re.compile(r"^\W*(?:original message|.*below this line is a copy|.*this is a copy of the message"
                            r"|.*message follows|.*returned message|.*headers? of the (?:original|returned) message"
                            r"|.*undelivered message)", re.I)
# Lines of bounce boilerplate (greeting, apology, advice), never the reason.
_BOILERPLATE = re.compile(
    r"^\W*(?:this is (?:the|an?) (?:mail|qmail|automatically|automatic|warning|permanent|temporary|mime|delivery)"
    r"|(?:hi|hello|dear|hallo|guten tag)\b|i'?m (?:sorry|afraid)|(?:be )?delivered to one or more"
    r"|this message was created automatically|for further assistance|if you do so|you can delete your own text"
    r"|the mail system\W*$|a message that you sent could not be delivered|the following address(?:\(es\)|es)? failed"
    r"|sorry it didn'?t work out|delivery has failed to these recipients|was this helpful|how to fix it"
    r"|technical details of|diese nachricht wurde automatisch|dies ist eine automatisch)", re.I)
_MEANINGFUL_LINES = 3
_MAX_REASON = 500
_MAX_SCANNED_TEXT = 100_000  # a bounce's own words come first; its returned message can be megabytes
# Auto-replies: headers vacation programs and autoresponders set (any value but a "no").
_AUTOREPLY_FLAGS = ("x-autoreply", "x-autorespond", "x-autoresponse", "x-autoresponder", "x-mail-autoreply")
_AUTOREPLY_PRECEDENCE = {"auto_reply", "auto-reply", "autoreply"}
_AUTOREPLY_MAILER = re.compile(r"\b(?:vacation|auto[- ]?responder|auto[- ]?reply)\b", re.I)
_AUTOREPLY_SUBJECT = re.compile(
    r"\s*(?:auto:|automatic reply\s*:|auto[- ]?reply\s*:|auto[- ]?response\s*:|abwesenheitsnotiz|automatische antwort"
    r"|r[ée]ponse automatique|risposta automatica|respuesta autom[áa]tica"
    r"|out of (?:the )?office(?:\s*(?::|-|\(|$)|\s+auto|\s+reply|\s+notice|\s+until))", re.I)


class _Headers(HeaderRegistry):
    """A header factory that builds each header class once: the stdlib's makes a new class per header."""

    _classes: dict[tuple[type, type], type] = {}

    def __getitem__(self, name: str) -> type:
        cls = self.registry.get(name.lower(), self.default_class)
        made = self._classes.get((cls, self.base_class))
        if made is None:
            made = self._classes[(cls, self.base_class)] = type("_" + cls.__name__, (cls, self.base_class), {})
        return made


class _MessageHeaders(_Headers):
    """One per parsed message: policy.default parses a header again on every get() (get_content_type() alone
    runs about 20 times per message), so each (name, value) is parsed once. Header objects are immutable."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[tuple[str, str], BaseHeader] = {}

    def __call__(self, name: str, value: str) -> BaseHeader:
        key = (name, value)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__call__(name, value)
        return made


_UNSTRUCTURED = _Headers(use_default_map=False)  # decodes encoded-words, parses nothing else
_FACTORY = _Headers()  # for the address and parameter parsers below
_SERIALISE = policy.default.clone(linesep="\r\n", refold_source="none")


class Unparseable(Exception):
    """The raw message cannot become a conversation; `reason` says why (shown to admins)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Part:
    """An attachment or inline part. A part over the size cap has data=b"" and sha256="" (size is real)."""

    filename: str | None
    content_type: str
    size: int
    sha256: str
    inline: bool
    content_id: str | None
    data: bytes


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    from_address: str
    from_name: str | None
    reply_to: str | None
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime | None
    text: str
    html: str | None
    parts: list[Part]
    headers: dict[str, str]
    auto_submitted: str | None
    precedence: str | None
    is_autoreply: bool
    is_bounce: bool
    bounce: BounceReport | None  # what a delivery report says (None unless is_bounce)


def _header_text(value: str, hint: str | None) -> str:
    """A raw header value as parsed from bytes: unfolded, 8-bit bytes decoded, encoded-word charsets widened."""
    value = "".join(value.splitlines())
    if _SURROGATES.search(value):
        with contextlib.suppress(UnicodeError):
            value = decode_header_bytes(value.encode("utf-8", "surrogateescape"), hint)
    return _ENCODED_WORD_CHARSET.sub(lambda m: "=?" + ENCODED_WORD_ALIASES.get(m[1].lower(), m[1]), _clean(value))


def _raw_headers(part: MIMEPart, hint: str | None) -> dict[str, str]:
    """Lower-cased name -> first value (cut to _MAX_PARSED_CHARS), as str; encoded-words left for the parsers."""
    found: dict[str, str] = {}
    for name, value in part.raw_items():
        key = _clean(name).strip().lower()
        if key and key not in found:
            found[key] = _header_text(str(value)[:_MAX_PARSED_CHARS], hint)
    return found


def _decoded(value: str) -> str:
    if "=?" not in value:  # no encoded-words: the header parser would hand back the same text
        return _clean(value)
    try:
        return _clean(str(_UNSTRUCTURED("x-any", value)))
    except Exception:  # a value the header parser chokes on is kept as it came
        return value


def parse_mail(raw: bytes, *, max_part_bytes: int = 25 * 1024 * 1024, max_parts: int = 500) -> ParsedMail:
    if not raw.strip():
        raise Unparseable("the message is empty")
    raw = repair_header_block(raw)
    try:
        message = BytesParser(policy=policy.default.clone(header_factory=_MessageHeaders())).parsebytes(raw)
        if not message.keys():
            raise Unparseable("no header section: the data does not start with mail headers")
        return _parse(message, max_part_bytes, max_parts)
    except Unparseable:
        raise
    except RecursionError as exc:
        raise Unparseable("MIME parts are nested too deeply") from exc
    except Exception as exc:  # the email package failed on this input: quarantine, never block the mailbox
        raise Unparseable(f"the MIME structure could not be read ({type(exc).__name__}: {exc})"[:300]) from exc


def _parse(message: EmailMessage, max_part_bytes: int, max_parts: int) -> ParsedMail:
    _repair_boundaries(message)
    if sum(1 for _ in islice(message.walk(), max_parts + 2)) - 1 > max_parts:
        raise Unparseable(f"more than {max_parts} MIME parts")
    leaves = list(_leaves(message))
    hint = next((c for c in (p.get_content_charset() for p in leaves) if c), None)
    headers = _raw_headers(message, hint)
    sender = _sender(message, headers, hint, leaves)
    pieces = _body_pieces(message)
    if not pieces:  # only named text parts (no body by the rule above): the first one is the body, as before
        fallback = message.get_body(preferencelist=("plain",)), message.get_body(preferencelist=("html",))
        pieces = [fallback] if fallback != (None, None) else []
    unsplit = [p for p in leaves if p.get_content_maintype() == "multipart"]  # broken multiparts: never parts
    if not pieces and unsplit:
        pieces = [(unsplit[0], None)]
    text, html = _body(pieces)
    skip = {id(p) for piece in pieces for p in piece if p is not None} | set(map(id, unsplit))
    skip |= {id(p) for p in _unchosen_alternatives(message)}
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    precedence = headers.get("precedence", "").strip().lower()
    subject = " ".join(_decoded(headers.get("subject", "")).split())
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    is_bounce = _is_bounce(message, leaves) or _is_plain_bounce(headers, sender[0], subject)
    parts = {id(p): _part(p, hint, max_part_bytes) for p in leaves if id(p) not in skip}
    return ParsedMail(
        message_id=next(iter(_message_ids(headers.get("message-id"))), None),
        in_reply_to=_message_ids(headers.get("in-reply-to")),
        references=_message_ids(headers.get("references")),
        from_address=sender[0],
        from_name=sender[1],
        reply_to=next((a for a, _ in _addresses(headers, "reply-to")), None),
        to=_unique(a for a, _ in _addresses(headers, "to")),
        cc=_unique(a for a, _ in _addresses(headers, "cc")),
        subject=subject,
        date=_date(headers.get("date")),
        text=text,
        html=html,
        parts=list(parts.values()),
        headers={
            k: _decoded(v[: 2 * MAX_HEADER_CHARS])[:MAX_HEADER_CHARS] for k, v in islice(headers.items(), MAX_HEADERS)
        },
        auto_submitted=auto_submitted if auto_submitted not in ("", "no") else None,
        precedence=precedence if precedence in _BULK else None,
        is_autoreply=not is_bounce and _is_autoreply(headers, subject),
        is_bounce=is_bounce,
        bounce=_bounce(leaves, parts, headers, text, subject) if is_bounce else None,
    )


def _repair_boundaries(message: MIMEPart) -> None:
    """Re-split a multipart that policy.default could not split: Outlook Express wrote `boundary=----=_Next...`
    unquoted (the parser stops at '='), and some senders declare one boundary but use another."""
    for part in message.walk():
        if part.get_content_maintype() != "multipart" or part.is_multipart():
            continue
        raw = next((str(v) for k, v in part.raw_items() if k.lower() == "content-type"), "")
        body = str(part.get_payload())
        declared = _BOUNDARY.search("".join(raw.splitlines()))
        used = re.search(r"^--(\S[^\r\n]*?)[ \t]*\r?$", body, re.M)  # the first line that looks like one
        candidates = ((declared[1] or declared[2]).strip() if declared else "", used[1] if used else "")
        for boundary in filter(None, candidates):
            head = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            fixed = BytesParser(policy=policy.default).parsebytes((head + body).encode("utf-8", "surrogateescape"))
            if fixed.is_multipart() and boundary != part.get_boundary():
                part.set_payload(fixed.get_payload())
                part.set_boundary(boundary)
                break


def _addresses(headers: dict[str, str], name: str) -> list[tuple[str, str | None]]:
    """(lower-cased addr-spec, display name) of each usable address in a header, in order."""
    value = headers.get(name)
    return _addresses_in(name, value) if value else []


def _addresses_in(name: str, value: str) -> list[tuple[str, str | None]]:
    return [(_clean(a), _clean(n) if n else None) for a, n in parse_addresses(name, value, _FACTORY, _decoded)]


def _sender(
    message: MIMEPart, headers: dict[str, str], hint: str | None, leaves: list[MIMEPart]
) -> tuple[str, str | None]:
    """The first usable address of the From headers (all of them, in order: a first one may be junk), else
    Sender, else Return-Path; Reply-To only when none of them has one (where replies go, not who wrote).
    A bounce whose From has no domain (`MAILER-DAEMON (Mail Delivery System)`, `MAILER DAEMON <>`) is from
    mailer-daemon (or its local part) at the domain of its Message-ID, else "invalid"."""
    froms = [_header_text(str(v)[:_MAX_PARSED_CHARS], hint) for k, v in message.raw_items()
             if k.strip().lower() == "from"]
    for value in froms:
        found = _addresses_in("from", value)
        if found:
            return found[0]
    for name in ("sender", "return-path", "reply-to"):
        found = _addresses(headers, name)
        if found:
            return found[0]
    null_path = headers.get("return-path", "").strip() == "<>"
    bare = next((b for b in (bare_sender(v, _decoded) for v in froms) if b is not None), None)
    if bare is not None and (null_path or _is_bounce(message, leaves)):
        local = re.sub(r"[^\w.+-]", "", bare[0]).lower() or "mailer-daemon"
        ids = _message_ids(headers.get("message-id"))
        domain = ids[0].rpartition("@")[2].lower() if ids and "@" in ids[0] else ""
        domain = domain if re.fullmatch(r"[\w.-]+", domain) else "invalid"
        return f"{local}@{domain}", bare[1]
    raise Unparseable("no sender address in From, Sender, Reply-To or Return-Path")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = re.findall(r"<([^<>]*)>", value) or [token for token in value.split() if "@" in token]
    return _unique(i for i in ("".join(raw.split()) for raw in ids) if i)


def _date(value: str | None) -> datetime | None:
    try:
        parsed = parsedate_to_datetime((value or "").strip())
    except Exception:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _is_autoreply(headers: dict[str, str], subject: str) -> bool:
    """An automatic answer to a message (out of office, vacation, "we got your mail"): by RFC 3834's
    Auto-Submitted: auto-replied, the flags and Precedence values autoresponders set, a vacation program's
    X-Mailer, or the subject prefixes Outlook, Exchange, Notes and webmail vacation replies use.
    Auto-Submitted: auto-generated (notifications, not answers) stays only in `auto_submitted`."""
    if headers.get("auto-submitted", "").strip().lower().startswith("auto-replied"):
        return True
    flags = (headers.get(name, "").strip().lower() for name in _AUTOREPLY_FLAGS)
    if any(flag not in ("", "no", "false", "0") for flag in flags):
        return True
    if "x-autoreply-from" in headers or headers.get("x-autogenerated", "").strip().lower() == "reply":  # any value
        return True
    precedences = (headers.get(name, "").strip().lower() for name in ("precedence", "x-precedence"))
    if any(value in _AUTOREPLY_PRECEDENCE for value in precedences):
        return True
    if _AUTOREPLY_MAILER.search(headers.get("x-mailer", "")):
        return True
    suppress = {token.strip().lower() for token in headers.get("x-auto-response-suppress", "").split(",")}
    return bool(suppress & {"all", "oof"}) or _AUTOREPLY_SUBJECT.match(subject) is not None


def _is_plain_bounce(headers: dict[str, str], sender: str, subject: str) -> bool:
    """A bounce without a DSN part (qmail, Exim, Postfix without DSN, Gmail, old Exchange): from a mail
    server's own address (mailer-daemon, postmaster) or with the null Return-Path bounces are sent with,
    and a bounce's subject or Exim's and Gmail's X-Failed-Recipients. Either alone is not enough: people
    write from postmaster@ and about failed deliveries, and every auto-reply has a null Return-Path."""
    from_server = sender.partition("@")[0] in _DAEMONS
    null_path = any(headers.get(name, "").strip() == "<>" for name in ("return-path", "x-envelope-from"))
    if not (from_server or null_path):
        return False
    return _BOUNCE_SUBJECT.match(subject) is not None or bool(headers.get("x-failed-recipients", "").strip())


def _bounce(
    leaves: list[MIMEPart], parts: dict[int, Part], headers: dict[str, str], text: str, subject: str
) -> BounceReport:
    """What a delivery report says: the Message-IDs of the mail it returns (its returned part, its own
    In-Reply-To and References, Message-ID lines its text quotes), the server's reason, and whether
    delivery failed for good. A broken report gives fewer ids and a reason from the text; never an error."""
    reports = (p for p in leaves if p.get_content_type() in _DSN_TYPES)
    recipients = [block for p in reports for block in _dsn_blocks(p, parts[id(p)].data if id(p) in parts else None)]
    scanned = text[:_MAX_SCANNED_TEXT]
    found = [
        *(i for part in leaves if part.get_content_type() in _RETURNED_TYPES for i in _returned_ids(part)),
        *_message_ids(headers.get("in-reply-to")),
        *_message_ids(headers.get("references")),
        *_QUOTED_ID.findall(scanned),
    ]
    actions = [block["action"].split()[0].lower() for block in recipients if block.get("action", "").split()]
    # No Action to go by (a plain bounce, a garbled report): a failure, unless the subject says it is a delay.
    failed = not all(a in _NOT_FAILED for a in actions) if actions else not _DELAY_SUBJECT.search(subject)
    reason = _dsn_reason(recipients) or _text_reason(scanned) or subject
    return BounceReport(
        original_ids=tuple(_unique(n for n in map(normalise_message_id, found) if n)),
        reason=" ".join(_one_reply(reason).split())[:_MAX_REASON],
        failed=failed,
    )


def _dsn_blocks(part: MIMEPart, data: bytes | None) -> list[dict[str, str]]:
    """The per-recipient blocks of a message/delivery-status part as lower-cased field -> value (first one;
    folded lines joined). Read from its text, not the email package's sub-messages: those are lost or
    wrong when a server leaves out the blank lines or encodes the part."""
    try:
        data = _payload(part) if data is None else data  # as kept for the part list: serialised once
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if encoding in ("base64", "quoted-printable"):  # not allowed for message/*, done anyway
            data = (binascii.a2b_base64 if encoding == "base64" else quopri.decodestring)(data)
        text = decode_bytes(data, part.get_content_charset())
    except Exception:  # an undecodable report: no blocks, the reason comes from the text
        return []
    blocks = []
    for chunk in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        fields: dict[str, str] = {}
        name = None
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and name is not None:
                fields[name] += " " + line.strip()
                continue
            field = _DSN_FIELD.fullmatch(line.strip())
            name = field[1].lower() if field and field[1].lower() not in fields else None
            if field and name is not None:
                fields[name] = field[2].strip()
        if fields.keys() & {"action", "final-recipient", "original-recipient"}:
            blocks.append(fields)
    return blocks


def _dsn_reason(recipients: list[dict[str, str]]) -> str:
    """The first failed recipient's Diagnostic-Code without its type ("smtp;"), else its Status and Action
    and address; the first recipient's when none failed (a delay, a success notice)."""
    failed = [b for b in recipients if b.get("action", "").lower().startswith("failed")]
    block = (failed or recipients or [{}])[0]
    diagnostic = _ADDRESS_TYPE.sub("", block.get("diagnostic-code", ""), count=1).strip()
    if diagnostic:
        return diagnostic
    status = " ".join(filter(None, (block.get("status", "").strip(), block.get("action", "").strip().lower())))
    recipient = _ADDRESS_TYPE.sub("", block.get("final-recipient") or block.get("original-recipient", ""), count=1)
    return f"{status}: {recipient.strip()}" if status and recipient.strip() else status


def _text_reason(text: str) -> str:
    """The server's words in a bounce's text, before the returned message: the first line with an SMTP
    reply in it (with the indented lines Postfix folds it onto), else the first few lines that are not
    greeting, apology or advice."""
    lines = []
    for line in islice(text.split("\n"), 400):
        if _RETURNED_TEXT.match(line):
            break
        lines.append(line)
    smtp = next((n for n, line in enumerate(lines) if _SMTP_REPLY.search(line)), None)
    if smtp is not None:
        indented = lines[smtp][:1].isspace()  # Exim indents its whole report: the next lines are not the reply's
        more = [] if indented else takewhile(lambda line: line[:1].isspace() and line.strip(), lines[smtp + 1:])
        return " ".join((lines[smtp], *more))
    stripped = (line.strip() for line in lines)
    meaningful = (line for line in stripped if re.search(r"\w", line) and not _BOILERPLATE.match(line)
                  and not (line.startswith("[") and line.endswith("]")))  # an image's link (Office 365 logo)
    return " ".join(islice(meaningful, _MEANINGFUL_LINES))


def _one_reply(reason: str) -> str:
    """A multi-line SMTP reply as one: "550-5.1.1 The email account ... 550-5.1.1 double-checking ...
    550 5.1.1 https://..." gives its code once, "550 5.1.1 The email account ... double-checking ..."."""
    first = re.search(r"(?<![\w.-])([45]\d\d)-(?:([245]\.\d{1,3}\.\d{1,3})\s)?", reason)
    if first is None:
        return reason
    code = f"{first[1]} {first[2]}" if first[2] else first[1]
    repeated = r"(?<!\S)" + re.escape(first[1]) + r"[ -]" + (re.escape(first[2]) + r"\s" if first[2] else "")
    return f"{reason[: first.start()]}{code} " + re.sub(repeated, "", reason[first.end() :])


def _returned_ids(part: MIMEPart) -> list[str]:
    """The Message-ID of the message a report returns, whole (message/rfc822, parsed by the email package)
    or headers only (text/rfc822-headers, read from its text)."""
    try:
        if part.is_multipart():  # message/*: the email package parsed the enclosed message
            enclosed = [sub for sub in part.get_payload() if isinstance(sub, Message)]
            values = (str(v) for sub in enclosed for k, v in sub.raw_items() if k.strip().lower() == "message-id")
            return _message_ids(next(values, None))
        data = part.get_payload(decode=True)
        text = decode_bytes(data if isinstance(data, bytes) else b"", part.get_content_charset())
    except Exception:  # a broken returned part: no id from it
        return []
    found = _HEADER_ID.search(text.replace("\r\n", "\n").lstrip("\n"))
    return _message_ids(found[1]) if found else []


def _is_bounce(message: MIMEPart, leaves: list[MIMEPart]) -> bool:
    """A standard delivery report (RFC 3464): multipart/report of report-type delivery-status, or any
    message with a delivery-status part."""
    report_type = str(message.get_param("report-type", "")).strip().lower()
    if message.get_content_type() == "multipart/report" and report_type == "delivery-status":
        return True
    return any(part.get_content_type() in _DSN_TYPES for part in leaves)


def _leaves(part: MIMEPart) -> Iterator[MIMEPart]:
    """Every non-multipart part in order; message/* parts are leaves (attachments), not descended into."""
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for sub in part.iter_parts():
            yield from _leaves(sub)
    else:
        yield part


def _payload(part: MIMEPart) -> bytes:
    """Decoded content; for message/* the enclosed message (or report blocks) as bytes."""
    if part.get_content_maintype() != "message" and not part.is_multipart():
        data = part.get_payload(decode=True)
        return data if isinstance(data, bytes) else b""
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=_SERIALISE).flatten(cast(EmailMessage, part))
    serialised = out.getvalue()
    return serialised.split(b"\r\n\r\n", 1)[-1] if part.keys() else serialised.removeprefix(b"\r\n")


def _body_text(part: MIMEPart) -> str:
    return decode_bytes(_payload(part), part.get_content_charset())


Piece = tuple[MIMEPart | None, MIMEPart | None]  # (text/plain, text/html) of one body part


def _is_body_text(part: MIMEPart) -> bool:
    """An inline text/plain or text/html part without a filename: body, as mail clients show it."""
    if part.get_content_type() not in ("text/plain", "text/html") or part.get_content_disposition() == "attachment":
        return False
    return not part.get_filename() if part.get_content_disposition() == "inline" else not part.get_param("name")


def _body_pieces(part: MIMEPart) -> list[Piece]:
    """The parts shown as the body, in order: in multipart/alternative the plain and the html rendering, in
    multipart/related its root, in any other multipart (mixed, report, signed, ...) every inline text part."""
    if part.get_content_maintype() != "multipart" or not part.is_multipart():
        if part.get_content_disposition() == "attachment":
            return []
        kind = part.get_content_type()
        return [(part, None)] if kind == "text/plain" else [(None, part)] if kind == "text/html" else []
    subtype = part.get_content_subtype()
    children = list(part.iter_parts())
    if subtype == "alternative":
        plain, html = part.get_body(preferencelist=("plain",)), part.get_body(preferencelist=("html",))
        plain = plain if plain is not None and plain.get_content_type() == "text/plain" else None
        html = html if html is not None and html.get_content_type() == "text/html" else None
        return [(plain, html)] if plain is not None or html is not None else []
    if subtype == "related":
        start = str(part.get_param("start", "") or "").strip().strip("<>")
        root = next((c for c in children if start and str(c.get("content-id", "")).strip().strip("<>") == start), None)
        return _body_pieces(root or children[0]) if children else []
    pieces: list[Piece] = []
    for child in children:
        if (child.get_content_maintype() == "multipart" and child.is_multipart()) or _is_body_text(child):
            pieces.extend(_body_pieces(child))
    return pieces


def _unchosen_alternatives(message: MIMEPart) -> Iterator[MIMEPart]:
    """text/plain and text/html renderings in a multipart/alternative that were not chosen (an empty plain
    one beside the html, a second html): other renderings of the body, not attachments."""
    for part in message.walk():
        if part.get_content_type() == "multipart/alternative" and part.is_multipart():
            yield from (p for p in part.iter_parts() if p.get_content_type() in ("text/plain", "text/html"))


def _body(pieces: list[Piece]) -> tuple[str, str | None]:
    """Text and sanitised HTML of the body pieces, one after another (a blank line between texts)."""
    texts, htmls = [], []
    any_html = any(html is not None for _, html in pieces)
    for plain, html_part in pieces:
        html = sanitize_html(_body_text(html_part)) if html_part is not None else None
        text = _body_text(plain) if plain is not None else ""
        if not text.strip() and html:
            text = html_to_text(html)
        if len(pieces) > 1 and not text.strip() and not (html or "").strip():
            continue
        texts.append(text)
        if any_html:
            htmls.append(html if html is not None else sanitize_html(f"<pre>{escape(text)}</pre>"))
    if len(texts) <= 1:
        return (texts[0] if texts else ""), (htmls[0] if htmls else None)
    return "\n\n".join(t.rstrip("\r\n") for t in texts[:-1]) + "\n\n" + texts[-1], "\n".join(htmls)


def _part(part: MIMEPart, hint: str | None, max_part_bytes: int) -> Part:
    data = _payload(part)
    headers = _raw_headers(part, part.get_content_charset() or hint)
    content_id = "".join(headers.get("content-id", "").split()).strip("<>") or None
    disposition = part.get_content_disposition()
    keep = len(data) <= max_part_bytes
    return Part(
        filename=_filename(headers),
        content_type=part.get_content_type(),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest() if keep else "",
        inline=disposition == "inline" or (disposition is None and content_id is not None),
        content_id=content_id,
        data=data if keep else b"",
    )


def _filename(headers: dict[str, str]) -> str | None:
    """Content-Disposition filename, else Content-Type name (RFC 2231 and encoded-words decoded), never a path."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = headers.get(header, "")
        try:
            parsed_header: Any = _FACTORY(header, value)
            name = str(parsed_header.params.get(param) or "")
        except Exception:
            name = ""
        loose = re.search(rf"(?:^|;)\s*{param}\s*=\s*(?:\"([^\"]*)\"|([^;]*))", value, re.I)
        lenient = (loose[1] or loose[2] or "").strip() if loose else ""
        if not name or (len(lenient) > len(name) and lenient.startswith(name)):  # unquoted "a b.txt", "=?..?="
            name = _decoded(lenient) if "=?" in lenient else lenient
        name = "".join(ch for ch in re.split(r"[\\/]", _clean(name))[-1] if ch.isprintable()).strip()
        if name:
            return name
    return None
