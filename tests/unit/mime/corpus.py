"""Where the shared mail corpus lives, and which files in it are mails."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
NOT_MAIL = {"SOURCES.md", "INVENTORY.tsv", ".gitattributes"}


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in NOT_MAIL)


def corpus_bytes(relative: str) -> bytes:
    return (CORPUS / relative).read_bytes()
