"""Parser choice for intake (issue 9): mailroom's stdlib parser (adapters/mime.parse_mail) against
fast-mail-parser (Stalwart's Rust mail-parser) and a hybrid (fast path, stdlib for what the fast one
rejects or leaves undecoded), on fidelity and on speed. Measurement only: intake is not changed.

fast-mail-parser is not a dependency; install it apart, e.g.
  .venv/bin/python -m pip install --no-deps --target /tmp/fmp fast-mail-parser==0.10.0
  PYTHONPATH=/tmp/fmp .venv/bin/python -m bench.parser_choice [--rounds 5]

Fidelity: the samples in tests/data/mime (one or more per misread class of issue 9), fields sender
address, display name, subject, body text (whitespace collapsed) and attachment count, against the
values tests/unit/test_mime_*.py pin (taken here from parse_mail, which those tests hold to them).
Speed: every file of tests/data/corpus under 100 KB, one core, messages/s; the stdlib column builds
the full ParsedMail (parts, hashes, sanitised HTML), the fast column only the fast parser's PyMail.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.html import html_to_text
from adapters.mime import Unparseable, parse_mail

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "mime"
CORPUS = ROOT / "tests" / "data" / "corpus"
FIELDS = ("sender", "name", "subject", "text", "attachments")
Fields = tuple[Any, ...]


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def stdlib_fields(raw: bytes) -> Fields | None:
    try:
        mail = parse_mail(raw)
    except Unparseable:
        return None
    return mail.from_address, mail.from_name, mail.subject, _norm(mail.text), len(mail.parts)


def _fast() -> Any:
    import fast_mail_parser  # type: ignore[import-not-found]

    return fast_mail_parser


def fast_fields(raw: bytes) -> Fields | None:
    fmp = _fast()
    try:
        mail = fmp.parse_email(raw)
    except Exception:
        return None
    sender = mail.from_
    address = (getattr(sender, "address", None) or "").lower() or None
    name = getattr(sender, "display_name", None) or None
    text = "\n\n".join(t for t in mail.text_plain if t.strip())
    if not text.strip() and mail.text_html:
        text = html_to_text("".join(mail.text_html))
    return address, name, _norm(mail.subject), _norm(text), len(mail.attachments)


def _suspect(raw: bytes, fields: Fields | None) -> bool:
    """The fast parser failed, or left something undecoded: encoded-words, ESC, U+FFFD, or raw 8-bit
    header bytes that are not UTF-8 (it reads those no better than latin-1)."""
    if fields is None or not fields[0]:
        return True
    if any(mark in str(value) for value in fields[1:4] for mark in ("=?", "\x1b", "\ufffd")):
        return True
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    if not head.isascii():
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return True
    return False


def hybrid_fields(raw: bytes) -> Fields | None:
    fields = fast_fields(raw)
    return stdlib_fields(raw) if _suspect(raw, fields) else fields


def fidelity(parse: Callable[[bytes], Fields | None], samples: list[Path]) -> tuple[int, int]:
    matched = total = 0
    for path in samples:
        raw = path.read_bytes()
        expected = stdlib_fields(raw)
        got = parse(raw)
        for i in range(len(FIELDS)):
            total += 1
            matched += expected is not None and got is not None and got[i] == expected[i]
    return matched, total


def speed(parse: Callable[[bytes], Any], raws: list[bytes], rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for raw in raws:
            parse(raw)
        best = max(best, len(raws) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    samples = sorted(SAMPLES.glob("*.eml"))
    raws = [p.read_bytes() for p in sorted(CORPUS.rglob("*")) if p.is_file() and p.suffix not in (".md", ".tsv")]
    raws = [r for r in raws if len(r) < 100_000]
    fast_parse = _fast().parse_email

    def fast_only(raw: bytes) -> Any:
        try:
            return fast_parse(raw)
        except Exception:
            return None

    rows = [
        ("stdlib (parse_mail)", stdlib_fields, lambda raw: stdlib_fields(raw)),
        ("fast-mail-parser", fast_fields, fast_only),
        ("hybrid", hybrid_fields, hybrid_fields),
    ]
    print(f"fidelity over {len(samples)} samples x {len(FIELDS)} fields; speed over {len(raws)} corpus files")
    print(f"{'parser':<22} {'fields matched':>16} {'msgs/s':>10}")
    for name, fields_of, timed in rows:
        matched, total = fidelity(fields_of, samples)
        rate = speed(timed, raws, args.rounds)
        print(f"{name:<22} {matched:>6}/{total:<4} {100 * matched / total:5.1f}% {rate:>10.0f}")
    fallbacks = sum(_suspect(raw, fast_fields(raw)) for raw in raws)
    print(f"hybrid fell back to the stdlib on {fallbacks} of {len(raws)} corpus files")


if __name__ == "__main__":
    main()
