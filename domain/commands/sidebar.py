"""Sidebar sources and pushed records: every change an event; records upserted idempotently
by (recordType, externalId)."""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from domain.commands.base import KEEP, Base, Keep, Written, retrying
from domain.errors import Collector, not_found
from domain.replies import has_line_break
from domain.sidebar import (
    RecordData,
    SidebarRecord,
    SidebarSource,
    SourceKind,
    SourceSpec,
    record_id,
)
from domain.validation import check_name, is_email, normalise_email

PLACEHOLDERS = ("customer_email", "email_domain", "contact_id", "account_id")
_RECORD_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")  # an HTTP token
MAX_FIELDS = 50
MAX_RECORD_FIELDS_BYTES = 64 * 1024


def check_url_template(errors: Collector, field: tuple[str, ...], template: str) -> None:
    """http(s), placeholders known and only in the path or query (never the host)."""
    if len(template) > 2000 or has_line_break(template) or any(ch.isspace() for ch in template):
        errors.add(field, "must be one URL of at most 2000 characters, without spaces or line breaks")
        return
    try:
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
    except ValueError as exc:
        errors.add(field, f"unbalanced braces: {exc}")
        return
    unknown = [n for n in names if n not in PLACEHOLDERS]
    if unknown:
        errors.add(field, f"unknown placeholder {{{unknown[0]}}}; use " + " ".join(f"{{{p}}}" for p in PLACEHOLDERS))
        return
    parts = urlsplit(template)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.add(field, "must start with https:// (or http://) and name a host")
    elif "{" in parts.netloc or "@" in parts.netloc:
        errors.add(field, "placeholders and credentials are not allowed in the host part")


def check_spec(errors: Collector, spec: SourceSpec) -> None:
    check_name(errors, ("input", "title"), spec.title)
    if not _RECORD_TYPE.match(spec.record_type):
        errors.add(("input", "recordType"), "letters, digits, '_', '.', '-' (at most 64), starting with a letter")
    if spec.kind is SourceKind.HTTP:
        if not spec.url_template:
            errors.add(("input", "urlTemplate"), "an HTTP source needs a URL template")
        else:
            check_url_template(errors, ("input", "urlTemplate"), spec.url_template)
    elif spec.url_template:
        errors.add(("input", "urlTemplate"), "only HTTP sources have a URL template")
    if len(spec.fields) > MAX_FIELDS:
        errors.add(("input", "fields"), f"at most {MAX_FIELDS} fields")
    keys = [f.key for f in spec.fields]
    for i, f in enumerate(spec.fields):
        if not f.key.strip() or len(f.key) > 100 or has_line_break(f.key):
            errors.add(("input", "fields", str(i), "key"), "must be a non-empty key of at most 100 characters")
        elif keys.index(f.key) != i:
            errors.add(("input", "fields", str(i), "key"), f"key {f.key!r} is given twice")
        check_name(errors, ("input", "fields", str(i), "label"), f.label)
    if not -1_000_000 <= spec.position <= 1_000_000:
        errors.add(("input", "position"), "must be between -1000000 and 1000000")


def check_auth_header(errors: Collector, value: str) -> None:
    name, colon, secret = value.partition(":")
    if not colon or not _HEADER_NAME.match(name.strip()) or not secret.strip() or has_line_break(value):
        errors.add(("input", "authHeader"), "must be one header line, e.g. 'Authorization: Bearer …'")


class SidebarCommands(Base):
    def create_sidebar_source(self, spec: SourceSpec, auth_header: str | None = None) -> Written:
        errors = Collector()
        check_spec(errors, spec)
        if auth_header:
            check_auth_header(errors, auth_header)
        errors.raise_if_any()
        auth_ref = self.secrets.put(auth_header.strip()) if auth_header else None
        source = SidebarSource(spec, auth_ref)
        return Written(source.id, self._store(source))

    @retrying()
    def update_sidebar_source(self, source_id: UUID, spec: SourceSpec, auth_header: str | Keep | None = KEEP
                              ) -> Written:
        source = self._load(SidebarSource, source_id, ("id",), "sidebar source")
        errors = Collector()
        check_spec(errors, spec)
        if isinstance(auth_header, str) and auth_header:
            check_auth_header(errors, auth_header)
        errors.raise_if_any()
        if spec != source.spec:
            source.change(spec)
        if not isinstance(auth_header, Keep):
            source.change_auth(self.secrets.put(auth_header.strip()) if auth_header else None)
        return Written(source.id, self._store(source))

    @retrying()
    def delete_sidebar_source(self, source_id: UUID) -> Written:
        source = self._load(SidebarSource, source_id, ("id",), "sidebar source")
        source.delete()
        return Written(source.id, self._store(source))

    @retrying()
    def upsert_record(self, record_type: str, external_id: str, title: str, customer_email: str | None,
                      account_id: UUID | None, contact_id: UUID | None, fields: Any, url: str | None) -> Written:
        errors = Collector()
        if not _RECORD_TYPE.match(record_type):
            errors.add(("input", "recordType"), "letters, digits, '_', '.', '-' (at most 64), starting with a letter")
        if not external_id.strip() or len(external_id) > 200 or has_line_break(external_id):
            errors.add(("input", "externalId"), "must be a non-empty id of at most 200 characters")
        check_name(errors, ("input", "title"), title, limit=500)
        email = normalise_email(customer_email) if customer_email else None
        if email is not None and not is_email(email):
            errors.add(("input", "customerEmail"), f"'{customer_email}' is not an email address")
        if not isinstance(fields, dict):
            errors.add(("input", "fields"), "must be a JSON object")
        fields_json = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(fields_json.encode()) > MAX_RECORD_FIELDS_BYTES:
            errors.add(("input", "fields"), f"must be at most {MAX_RECORD_FIELDS_BYTES // 1024} KB as JSON")
        if url is not None and (urlsplit(url).scheme not in ("http", "https") or len(url) > 2000
                                or has_line_break(url)):
            errors.add(("input", "url"), "must be an http(s) URL of at most 2000 characters")
        errors.raise_if_any()
        data = RecordData(title.strip(), email, account_id, contact_id, fields_json, url)
        record = self._find(record_id(record_type, external_id))
        if not isinstance(record, SidebarRecord):
            record = SidebarRecord(record_type, external_id, data)
        elif record.deleted or record.data != data:
            record.update(data)
        return Written(record.id, self._store(record))

    @retrying()
    def delete_record(self, record_type: str, external_id: str) -> Written:
        record = self._find(record_id(record_type, external_id))
        if not isinstance(record, SidebarRecord):
            raise not_found(("externalId",), f"record {record_type}/{external_id}")
        if not record.deleted:
            record.delete()
        return Written(record.id, self._store(record))

