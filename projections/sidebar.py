"""Sidebar sources as admins configured them, and the records pushed into mailroom, indexed by
each way a source can match a customer (DESIGN 7)."""

from __future__ import annotations

from domain import events as ev
from domain.customers import Erasure
from domain.sidebar import RecordData, SidebarRecord, SidebarSource, SourceSpec
from projections import erasure
from projections.tables import Rows, Table
from projections.view import View, dispatch, on, to_json
from projections.view import event_id as _id
from projections.view import event_time as _at

T, B = "TEXT", "BIGINT"

SOURCES = Table("rm_sidebar_sources", {
    "id": T, "title": T, "record_type": T, "kind": T, "url_template": T, "match_by": T, "fields": T,
    "position": B, "enabled": B, "auth_ref": T, "created_at": T}, ("id",))
RECORDS = Table("rm_sidebar_records", {
    "id": T, "record_type": T, "external_id": T, "title": T, "customer_email": T, "email_domain": T,
    "account_id": T, "contact_id": T, "fields": T, "url": T, "updated_at": T, "deleted": B}, ("id",),
    (("record_type", "customer_email"), ("record_type", "email_domain"), ("record_type", "contact_id"),
     ("record_type", "account_id")))


def _spec_columns(spec: SourceSpec) -> dict[str, object]:
    return {"title": spec.title, "record_type": spec.record_type, "kind": spec.kind.value,
            "url_template": spec.url_template, "match_by": spec.match_by.value, "fields": to_json(spec.fields),
            "position": spec.position, "enabled": int(spec.enabled)}


def source_created(e: SidebarSource.Created, rows: Rows) -> None:
    rows.put(SOURCES, {"id": _id(e), **_spec_columns(e.spec), "created_at": _at(e),
                       "auth_ref": None if e.auth_ref is None else str(e.auth_ref)})


def source_changed(e: ev.SidebarSourceChanged, rows: Rows) -> None:
    rows.update(SOURCES, _id(e), **_spec_columns(e.spec))


def source_auth_changed(e: ev.SidebarSourceAuthChanged, rows: Rows) -> None:
    rows.update(SOURCES, _id(e), auth_ref=None if e.auth_ref is None else str(e.auth_ref))


def source_deleted(e: ev.Event, rows: Rows) -> None:
    rows.delete(SOURCES, _id(e))


def _record(record_id: str, record_type: str, external_id: str, data: RecordData, at: str, rows: Rows) -> None:
    email = data.customer_email
    rows.put(RECORDS, {
        "id": record_id, "record_type": record_type, "external_id": external_id, "title": data.title,
        "customer_email": email, "email_domain": email.rpartition("@")[2] if email else None,
        "account_id": None if data.account_id is None else str(data.account_id),
        "contact_id": None if data.contact_id is None else str(data.contact_id), "fields": data.fields_json,
        "url": data.url, "updated_at": at, "deleted": 0})


def record_created(e: SidebarRecord.Created, rows: Rows) -> None:
    _record(_id(e), e.record_type, e.external_id, e.data, _at(e), rows)


def record_updated(e: ev.SidebarRecordUpdated, rows: Rows) -> None:
    known = rows.get(RECORDS, _id(e))
    assert known is not None
    _record(_id(e), known["record_type"], known["external_id"], e.data, _at(e), rows)


def record_deleted(e: ev.Event, rows: Rows) -> None:
    # Kept, marked: an upsert after a delete brings the same record back (its type and id stay known).
    rows.update(RECORDS, _id(e), deleted=1)


class Sidebar(View):
    name = "sidebar"
    tables = (SOURCES, RECORDS)
    handlers = dispatch(
        on(SidebarSource.Created, source_created),
        on(ev.SIDEBAR_SOURCE_CHANGED, source_changed),
        on(ev.SIDEBAR_SOURCE_AUTH_CHANGED, source_auth_changed),
        on(ev.SIDEBAR_SOURCE_DELETED, source_deleted),
        on(SidebarRecord.Created, record_created),
        on(ev.SIDEBAR_RECORD_UPDATED, record_updated),
        on(ev.SIDEBAR_RECORD_DELETED, record_deleted),
        on(Erasure.Erased, lambda e, rows: erasure.records(e, rows, RECORDS)),
    )
