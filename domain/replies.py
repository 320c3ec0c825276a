"""What a reply says, before any MIME: its subject from the mailbox's template, its text with the
footer and the customer's last message quoted, and the checks every header value passes.

Pure functions of their inputs: the outbox builds the message from these once, when the reply
is queued, so a retry sends the same bytes."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime

from domain.errors import Collector
from domain.validation import LINE_BREAKS  # CR/LF inject headers; U+2028 and others break lines

MAX_SUBJECT = 500
MAX_DISPLAY_NAME = 200
MAX_BODY = 100_000
MAX_QUOTED = 20_000

# Reply and forward prefixes of common clients (English, German, Nordic, Dutch, French, Spanish,
# Italian, Polish...), with optional counters: "Re[2]:", "RE(3):", and the full-width colon.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|ant|wg|fw|fwd|tr|rv|enc|rif|r|odp|ref|réf|res)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+",
    re.IGNORECASE)
_REF_TOKENS = re.compile(r"\s*\[#[A-HJ-NP-Z2-9]{8}\]", re.IGNORECASE)


def has_line_break(value: str) -> bool:
    return any(ch in LINE_BREAKS for ch in value)


def check_header_value(errors: Collector, field: tuple[str, ...], value: str, limit: int) -> None:
    if has_line_break(value):
        errors.add(field, "must not contain line breaks (CR, LF, U+2028, U+2029, U+0085 or others)")
    elif len(value) > limit:
        errors.add(field, f"must be at most {limit} characters")


def check_footer(errors: Collector, field: tuple[str, ...], footer: str) -> None:
    """A footer is body text: LF line ends are fine; other line separators and NUL are refused."""
    if any(ch in LINE_BREAKS - {"\n"} for ch in footer.replace("\r\n", "\n")):
        errors.add(field, "may contain only LF line breaks (no lone CR, U+2028, U+2029, U+0085, NUL)")
    elif len(footer) > 10_000:
        errors.add(field, "must be at most 10000 characters")


def bare_subject(subject: str) -> str:
    """The subject without leading reply/forward prefixes and without our reference tokens."""
    return _PREFIX.sub("", _REF_TOKENS.sub("", subject)).strip()


def ref_token(ref: str) -> str:
    return f"[#{ref}]"


def reply_subject(template: str, subject: str, mailbox: str, ref: str) -> str:
    """The template filled in; prefixes never stack ("Re: Re:", "AW: RE:" become the template's
    one) and the conversation's reference token is there exactly once, so a customer's answer
    threads back even when the client drops In-Reply-To."""
    filled = template.format(subject=bare_subject(subject), mailbox=mailbox, conversation_ref=ref_token(ref))
    return with_ref(filled, ref)


def with_ref(subject: str, ref: str) -> str:
    head = _PREFIX.match(subject)
    prefix = head.group(0).split(":")[0].strip() + ": " if head else ""
    rest = subject[head.end():] if head else subject
    token = ref_token(ref)
    if token.lower() not in rest.lower():
        rest = f"{rest.rstrip()} {token}".strip()
    return " ".join(f"{prefix}{rest}".split())


def normalise_body(text: str) -> str:
    """Line ends as LF (CRLF, lone CR and Unicode separators), NUL dropped."""
    text = text.replace("\r\n", "\n").replace("\x00", "")
    return re.sub("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]", "\n", text)


@dataclass(frozen=True)
class Quoted:
    """The customer's message a reply answers, as quoted below it."""

    sender: str  # "Jane Doe <jane@example.com>" or the address
    date: datetime
    text: str


def attribution(quoted: Quoted) -> str:
    return f"On {quoted.date.strftime('%a, %d %b %Y %H:%M %Z').strip()}, {quoted.sender} wrote:"


def reply_text(body: str, footer: str, quoted: Quoted | None) -> str:
    parts = [normalise_body(body).rstrip()]
    if footer.strip():
        parts.append(normalise_body(footer).rstrip())
    if quoted is not None and quoted.text.strip():
        lines = normalise_body(quoted.text[:MAX_QUOTED]).rstrip().split("\n")
        parts.append(attribution(quoted) + "\n" + "\n".join(">" if not ln else f"> {ln}" for ln in lines))
    return "\n\n".join(parts) + "\n"


def _paragraphs(text: str) -> str:
    return html.escape(normalise_body(text).rstrip()).replace("\n", "<br>\n")


def reply_html(body: str, footer: str, quoted: Quoted | None) -> str:
    """The HTML alternative: the same text escaped (nothing an agent types becomes markup)."""
    out = [f"<div>{_paragraphs(body)}</div>"]
    if footer.strip():
        out.append(f'<div class="footer">{_paragraphs(footer)}</div>')
    if quoted is not None and quoted.text.strip():
        out.append(f"<div>{html.escape(attribution(quoted))}</div>")
        out.append(f'<blockquote type="cite">{_paragraphs(quoted.text[:MAX_QUOTED])}</blockquote>')
    return "<!DOCTYPE html>\n<html><body>\n" + "\n".join(out) + "\n</body></html>\n"
