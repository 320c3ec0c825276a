"""What an HTTP sidebar source answers, read into records: a JSON array of objects, or an object
with a `records` array; each object has `id` and `title`, optionally `url`; its other keys are the
record's fields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_RECORDS = 100


@dataclass(frozen=True)
class FetchedRecord:
    external_id: str
    title: str
    url: str | None
    fields: dict[str, object]


class SourceError(Exception):
    """Why a source shows no records: `message` is short, for the agent, and names no secret."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_records(body: bytes) -> list[FetchedRecord]:
    """The records of an answer, at most MAX_RECORDS; raises SourceError when it is not one of the
    two accepted shapes. Items that are not objects, or have no usable `id`, are skipped."""
    try:
        document = json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):  # ValueError covers bad UTF-8 and bad JSON alike
        raise SourceError("the answer is not valid JSON") from None
    if isinstance(document, dict) and isinstance(document.get("records"), list):
        items = document["records"]
    elif isinstance(document, list):
        items = document
    else:
        raise SourceError('the answer is neither a JSON array nor an object with a "records" array')
    records: list[FetchedRecord] = []
    for item in items:
        if len(records) == MAX_RECORDS:
            break
        if not isinstance(item, dict):
            continue
        external_id = _scalar(item.get("id"))
        if external_id is None:
            continue
        title = _scalar(item.get("title"))
        fields = {key: value for key, value in item.items() if key not in ("id", "title", "url")}
        records.append(FetchedRecord(external_id, external_id if title is None else title,
                                     _web_url(item.get("url")), fields))
    return records


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")  # NaN and Infinity: Python reads them, JSON has none


def _scalar(value: object) -> str | None:
    """A string or a number as text; None for anything else (null, booleans, arrays, objects)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _web_url(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme.lower() in ("http", "https") and parts.hostname else None
