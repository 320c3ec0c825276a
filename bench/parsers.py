"""Mail parsers compared (issue 9, "Choose the parser by measurement"): the stdlib `parse_mail`
(adapters/mime.py), fast-mail-parser (Stalwart's Rust mail-parser) alone, and a hybrid (fast
path, stdlib where it raises or leaves something undecoded). Speed on one core (msgs/s, MB/s,
wall and CPU, best of N rounds) over the shared corpus, tests/data/corpus and tests/data/mime,
and over intake's synthetic 5 KB mails; fidelity per field; intake's per-message share.

`.venv/bin/python -m bench.parsers [--rounds 3] [--show 10]`
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adapters.html import html_to_text
from adapters.mime import Unparseable, parse_mail
from bench.common import table

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT.parent / "shared" / "corpus", ROOT / "tests" / "data" / "corpus", ROOT / "tests" / "data"]
NOT_MAIL = {".md", ".tsv", ".json", ".jsonl", ".py", ".tnef"}  # tnefparse's files are TNEF blobs, not RFC 5322
INTAKE_MS = 1.0  # intake end to end on PostgreSQL: about 1,000 msgs/s
FIELDS = ("from address", "display name", "subject", "body text", "attachment count", "attachment names")

try:
    import fast_mail_parser as fmp
except ImportError:  # pragma: no cover - measured without it
    fmp = None


def mails() -> list[tuple[str, bytes]]:
    """Every mail file once (by content): the shared corpus first, then the repo's copies and samples."""
    seen: set[str] = set()
    out: list[tuple[str, bytes]] = []
    for base in SOURCES:
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.suffix.lower() in NOT_MAIL or path.name.startswith("."):
                continue
            raw = path.read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            if digest not in seen:
                seen.add(digest)
                out.append((str(path.relative_to(base.parent)), raw))
    return out


# --- the three parsers, each mapped to the compared fields ---------------------------------


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def stdlib_fields(raw: bytes) -> dict[str, Any] | None:
    try:
        mail = parse_mail(raw)
    except Unparseable:
        return None
    names = sorted(p.filename or "" for p in mail.parts)
    return {
        "from address": mail.from_address.lower(),
        "display name": mail.from_name or "",
        "subject": mail.subject or "",
        "body text": _norm(mail.text),
        "attachment count": len(mail.parts),
        "attachment names": names,
    }


def fmp_mail(raw: bytes) -> Any:
    return fmp.parse_email(raw)


def fmp_fields(mail: Any) -> dict[str, Any]:
    """fast-mail-parser's PyMail mapped to the same fields (text from the HTML as intake does when no plain part)."""
    sender = mail.from_
    if isinstance(sender, list):
        sender = sender[0] if sender else None
    text = "\n".join(mail.text_plain or [])
    if not text.strip() and mail.text_html:
        text = html_to_text("\n".join(mail.text_html))
    attachments = mail.attachments or []
    return {
        "from address": ((sender.address if sender else "") or "").lower(),
        "display name": (sender.display_name if sender else "") or "",
        "subject": mail.subject or "",
        "body text": _norm(text),
        "attachment count": len(attachments),
        "attachment names": sorted(a.filename or "" for a in attachments),
    }


def _undecoded(value: str) -> bool:
    return "=?" in value or "\ufffd" in value or "\x1b" in value


def hybrid_fields(raw: bytes) -> tuple[dict[str, Any] | None, bool]:
    """fast-mail-parser first; the stdlib where it raises, finds no sender or leaves something undecoded."""
    try:
        fields = fmp_fields(fmp.parse_email(raw))
    except Exception:
        return stdlib_fields(raw), True
    if (
        not fields["from address"]
        or _undecoded(fields["subject"])
        or _undecoded(fields["display name"])
        or "\ufffd" in fields["body text"]
        or "\x1b" in fields["body text"]
    ):
        return stdlib_fields(raw), True
    return fields, False


# --- speed -------------------------------------------------------------------------------


def _guarded(parse: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def run(raw: bytes) -> object:
        try:
            return parse(raw)
        except Exception:  # counted apart; a raising mail still costs its time
            return None

    return run


def speed(raws: Sequence[bytes], parse: Callable[[bytes], object], rounds: int) -> tuple[float, float, list[float]]:
    """Best wall and best CPU seconds over the rounds (one core: this process, one thread), and each round's CPU."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for raw in raws:
            parse(raw)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), cpus


# --- fidelity ----------------------------------------------------------------------------


def _flaws(value: Any, other: Any) -> list[str]:
    text = " ".join(value) if isinstance(value, list) else str(value)
    other_text = " ".join(other) if isinstance(other, list) else str(other)
    flaws = []
    if "Ã" in text or "Â" in text or "â€" in text:
        flaws.append("mojibake Ã")
    if _latin1_mojibake(text, other_text):
        flaws.append("8-bit read as Latin-1")
    if "\ufffd" in text:
        flaws.append("U+FFFD")
    if "\x1b" in text:
        flaws.append("ESC")
    if "=?" in text and "?=" in text:
        flaws.append("undecoded =?")
    if not text.strip() and other_text.strip() and not isinstance(value, int):
        flaws.append("empty")
    if isinstance(value, int) and isinstance(other, int) and value < other:
        flaws.append("fewer")
    return flaws


def _latin1_mojibake(text: str, other: str) -> bool:
    """Bytes of another charset read as Latin-1: only Latin-1 letters (two or more high ones, or a C1 control)
    where the other reading has characters beyond Latin-1 (Cyrillic, CJK)."""
    high = sum(1 for c in text if "\x80" <= c <= "\xff")
    return bool(high >= 2 and all(c <= "\xff" for c in text) and any(c > "\xff" for c in other)) or any(
        "\x80" <= c <= "\x9f" for c in text
    )


def judge(a: Any, b: Any) -> str:
    """Which reading looks right by the simple objective checks: 'stdlib', 'fmp', 'both suspect' or 'undecided'."""
    if isinstance(a, str) and isinstance(b, str) and _norm(a) == _norm(b):
        return "whitespace only"
    fa, fb = _flaws(a, b), _flaws(b, a)
    if fa and not fb:
        return "fmp (stdlib: " + ", ".join(fa) + ")"
    if fb and not fa:
        return "stdlib (fmp: " + ", ".join(fb) + ")"
    if fa and fb:
        return "both suspect"
    return "undecided"


def _short(value: Any, width: int = 70) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--show", type=int, default=0, help="print N disagreement examples")
    args = parser.parse_args(argv)

    corpus = mails()
    raws = [raw for _, raw in corpus]
    total_mb = sum(map(len, raws)) / 1e6
    try:
        from bench.intake import corpus as intake_corpus

        synthetic = intake_corpus(500).raws
    except Exception:  # pragma: no cover - only the speed on intake's mails is lost
        synthetic = []
    print(
        f"{len(corpus)} distinct mail files, {total_mb:.2f} MB (mean {total_mb * 1e3 / len(corpus):.1f} KB); "
        f"{len(synthetic)} of intake's synthetic mails; best of {args.rounds} rounds, one core"
    )
    if fmp is None:
        print("fast-mail-parser is not installed (.venv/bin/pip install fast-mail-parser==0.10.0): stdlib alone")

    stdlib_q = sum(1 for raw in raws if stdlib_fields(raw) is None)
    runs: list[tuple[str, Callable[[bytes], object]]] = [("stdlib parse_mail", _guarded(parse_mail))]
    fmp_raises: list[tuple[str, str]] = []
    fallbacks = 0
    if fmp is not None:
        for name, raw in corpus:
            try:
                fmp.parse_email(raw)
            except Exception as error:
                fmp_raises.append((name, f"{type(error).__name__}: {error}"[:100]))
        fallbacks = sum(hybrid_fields(raw)[1] for raw in raws)
        runs += [
            ("fast-mail-parser alone", _guarded(fmp_mail)),
            ("fmp mapped to fields", _guarded(lambda raw: fmp_fields(fmp.parse_email(raw)))),
            ("hybrid (fmp + stdlib fallback)", _guarded(hybrid_fields)),
        ]

    rows = []
    stdlib_ms = None
    for label, parse in runs:
        for raw in raws[:20]:
            parse(raw)
        wall, cpu, cpus = speed(raws, parse, args.rounds)
        row: list[object] = [
            label,
            f"{len(raws) / cpu:,.0f}",
            f"{total_mb / cpu:.1f}",
            f"{len(raws) / wall:,.0f}",
            f"{cpu * 1e3 / len(raws):.3f}",
            " ".join(f"{c:.2f}" for c in cpus),
        ]
        if synthetic:
            _, scpu, _ = speed(synthetic, parse, args.rounds)
            ms = scpu * 1e3 / len(synthetic)
            stdlib_ms = ms if stdlib_ms is None else stdlib_ms
            row += [f"{len(synthetic) / scpu:,.0f}", f"{ms:.3f}", f"{ms / INTAKE_MS:.0%}"]
        rows.append(row)
    header = ["parser", "msgs/s CPU", "MB/s CPU", "msgs/s wall", "ms/msg CPU", "CPU s per round"]
    if synthetic:
        header += ["intake mails msgs/s", "ms/msg", "of intake's 1 ms/msg"]
    print()
    print(table(header, rows))
    summary = f"stdlib quarantines (Unparseable): {stdlib_q} of {len(raws)}"
    if fmp is not None:
        summary += f"; fast-mail-parser raises on {len(fmp_raises)}; the hybrid falls back to the stdlib on {fallbacks}"
    print(summary)
    for name, error in fmp_raises:
        print(f"  raises: {name}: {error}")
    if fmp is None:
        return

    agree: Counter[str] = Counter()
    verdicts: dict[str, Counter[str]] = {field: Counter() for field in FIELDS}
    examples: list[tuple[str, str, Any, Any, str]] = []
    compared = 0
    hybrid_agree: Counter[str] = Counter()
    stdlib_read = 0
    for name, raw in corpus:
        a = stdlib_fields(raw)
        if a is not None:
            stdlib_read += 1
            h = hybrid_fields(raw)[0]
            hybrid_agree.update(field for field in FIELDS if h is not None and h[field] == a[field])
        try:
            b = fmp_fields(fmp.parse_email(raw))
        except Exception:
            continue
        if a is None:
            continue
        compared += 1
        for field in FIELDS:
            if a[field] == b[field]:
                agree[field] += 1
            else:
                verdict = judge(a[field], b[field])
                verdicts[field][verdict.split(" (")[0]] += 1
                examples.append((field, name, a[field], b[field], verdict))
    print()
    print(
        f"fidelity over the {compared} mails both parse (stdlib vs fast-mail-parser); who looks right where they differ"
    )
    rows = []
    for field in FIELDS:
        v = verdicts[field]
        rows.append(
            [
                field,
                f"{agree[field]}/{compared}",
                f"{agree[field] / compared:.1%}",
                v["stdlib"],
                v["fmp"],
                v["both suspect"],
                v["whitespace only"],
                v["undecided"],
            ]
        )
    print(table(["field", "agree", "%", "stdlib right", "fmp right", "both suspect", "whitespace", "undecided"], rows))
    print(
        f"hybrid vs stdlib over the {stdlib_read} mails the stdlib reads: "
        + ", ".join(f"{field} {hybrid_agree[field]}" for field in FIELDS)
    )
    categories = Counter(verdict for *_, verdict in examples if verdict not in ("undecided", "whitespace only"))
    if categories:
        print("disagreements by category:")
        for verdict, n in categories.most_common():
            print(f"  {n:4}  {verdict}")
    if args.show:
        print()
        ranked = sorted(examples, key=lambda e: e[4] in ("undecided", "whitespace only"))
        for field, name, a, b, verdict in ranked[: args.show]:
            print(f"{name} [{field}] -> {verdict}\n    stdlib: {_short(a)}\n    fmp:    {_short(b)}")


if __name__ == "__main__":
    main()
