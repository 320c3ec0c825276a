"""The sidebar with pushed records: sources in position order, matched by email, domain, contact
or account (the contact's account, else the domain's), and never a record of one customer beside
another customer's conversation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.bootstrap import Services
from api.sidebar import SectionView
from domain.errors import Rejected
from domain.ids import contact_id
from domain.sidebar import MatchKey, SidebarFieldSpec, SourceKind, SourceSpec


def source(title: str, record_type: str, match_by: MatchKey, position: int = 0, enabled: bool = True,
           fields: list[tuple[str, str]] | None = None) -> SourceSpec:
    return SourceSpec(title, record_type, SourceKind.RECORDS, None, match_by,
                      [SidebarFieldSpec(k, label) for k, label in (fields or [])], position, enabled)


def resolve(services: Services, *customers: str) -> list[list[SectionView]]:
    services.projections.wait_for(services.projections.head())
    pairs = [(str(uuid.uuid4()), email) for email in customers]
    return asyncio.run(services.sidebar.resolve(pairs))


def push(services: Services, record_type: str, external_id: str, **match: Any) -> None:
    services.app.upsert_record(record_type, external_id, f"{record_type} {external_id}", match.get("email"),
                               match.get("account"), match.get("contact"), match.get("fields", {}), None)


def test_sources_show_in_position_order_with_their_configured_fields(services: Services) -> None:
    app = services.app
    app.create_sidebar_source(source("Work orders", "workorder", MatchKey.CUSTOMER_EMAIL, position=2))
    app.create_sidebar_source(source("Orders", "order", MatchKey.CUSTOMER_EMAIL, position=1,
                                     fields=[("total", "Total"), ("status", "Status")]))
    app.create_sidebar_source(source("Hidden", "order", MatchKey.CUSTOMER_EMAIL, position=0, enabled=False))
    push(services, "order", "A-1", email="jane@acme.example", fields={"status": "shipped", "total": "12 EUR",
                                                                       "internal": "x"})
    push(services, "workorder", "W-9", email="jane@acme.example")
    [sections] = resolve(services, "Jane@Acme.example")
    assert [s.title for s in sections] == ["Orders", "Work orders"]
    [order] = sections[0].records
    assert (order.external_id, order.fields) == ("A-1", {"total": "12 EUR", "status": "shipped"})
    assert list(order.fields) == ["total", "status"]  # the configured order


def test_upsert_is_idempotent_and_delete_hides_the_record(services: Services) -> None:
    app = services.app
    app.create_sidebar_source(source("Orders", "order", MatchKey.CUSTOMER_EMAIL))
    first = app.upsert_record("order", "A-1", "Order A-1", "jane@acme.example", None, None, {"n": 1}, None)
    again = app.upsert_record("order", "A-1", "Order A-1", "jane@acme.example", None, None, {"n": 1}, None)
    assert again.id == first.id and again.position is None  # nothing new to record
    assert [r.title for r in resolve(services, "jane@acme.example")[0][0].records] == ["Order A-1"]
    app.delete_record("order", "A-1")
    assert resolve(services, "jane@acme.example")[0][0].records == []
    app.upsert_record("order", "A-1", "Order A-1 again", "jane@acme.example", None, None, {}, None)
    assert [r.title for r in resolve(services, "jane@acme.example")[0][0].records] == ["Order A-1 again"]


def test_account_matching_through_the_contact_then_the_domain(services: Services) -> None:
    app = services.app
    acme = app.upsert_account(None, "Acme", ["acme.example"]).id
    beta = app.upsert_account(None, "Beta", ["beta.example"]).id
    app.upsert_contact("jo@acme.example", "Jo", account_id=beta)  # the contact's account beats the domain
    app.create_sidebar_source(source("Contracts", "contract", MatchKey.ACCOUNT))
    push(services, "contract", "acme-1", account=acme)
    push(services, "contract", "beta-1", account=beta)
    jane, jo, nobody = resolve(services, "jane@acme.example", "jo@acme.example", "x@unknown.example")
    assert [r.external_id for r in jane[0].records] == ["acme-1"]
    assert [r.external_id for r in jo[0].records] == ["beta-1"]
    assert nobody[0].records == [] and nobody[0].error is None


def test_contact_and_domain_matching(services: Services) -> None:
    app = services.app
    app.upsert_contact("jo@acme.example", "Jo")
    app.create_sidebar_source(source("By contact", "ticket", MatchKey.CONTACT, position=1))
    app.create_sidebar_source(source("By domain", "site", MatchKey.EMAIL_DOMAIN, position=2))
    push(services, "ticket", "T-1", contact=contact_id("jo@acme.example"))
    push(services, "site", "S-1", email="someone@acme.example")
    jo, jane = resolve(services, "jo@acme.example", "jane@acme.example")
    assert [[r.external_id for r in s.records] for s in jo] == [["T-1"], ["S-1"]]
    assert [[r.external_id for r in s.records] for s in jane] == [[], ["S-1"]]


@pytest.mark.parametrize(("spec", "field"), [
    (SourceSpec("", "order", SourceKind.RECORDS, None, MatchKey.CUSTOMER_EMAIL), "title"),
    (SourceSpec("Orders", "bad type!", SourceKind.RECORDS, None, MatchKey.CUSTOMER_EMAIL), "recordType"),
    (SourceSpec("Orders", "order", SourceKind.HTTP, None, MatchKey.CUSTOMER_EMAIL), "urlTemplate"),
    (SourceSpec("Orders", "order", SourceKind.HTTP, "ftp://x.example/{customer_email}", MatchKey.CUSTOMER_EMAIL),
     "urlTemplate"),
    (SourceSpec("Orders", "order", SourceKind.HTTP, "https://{email_domain}/x", MatchKey.CUSTOMER_EMAIL),
     "urlTemplate"),
    (SourceSpec("Orders", "order", SourceKind.HTTP, "https://erp.example/{nope}", MatchKey.CUSTOMER_EMAIL),
     "urlTemplate"),
    (SourceSpec("Orders", "order", SourceKind.RECORDS, "https://erp.example/", MatchKey.CUSTOMER_EMAIL),
     "urlTemplate"),
    (SourceSpec("Orders", "order", SourceKind.RECORDS, None, MatchKey.CUSTOMER_EMAIL,
                [SidebarFieldSpec("a", "A"), SidebarFieldSpec("a", "B")]), "fields"),
])
def test_bad_sources_are_refused_naming_the_field(services: Services, spec: SourceSpec, field: str) -> None:
    with pytest.raises(Rejected) as refused:
        services.app.create_sidebar_source(spec)
    assert refused.value.problems[0].field is not None and refused.value.problems[0].field[1] == field


def test_an_auth_header_is_kept_as_a_secret_never_in_the_log(services: Services) -> None:
    spec = SourceSpec("ERP", "order", SourceKind.HTTP, "https://erp.example/o?e={customer_email}",
                      MatchKey.CUSTOMER_EMAIL)
    services.app.create_sidebar_source(spec, "Authorization: Bearer very-secret-erp-token")
    states = [n.state for n in services.app.recorder.select_notifications(1, 1000)]
    assert not any(b"very-secret-erp-token" in state for state in states)
    services.projections.wait_for(services.projections.head())
    [row] = services.sidebar_queries.sources()
    assert row["auth_ref"] and "very-secret" not in str(row)


EMAILS = st.tuples(st.sampled_from(["ann", "bob", "cy"]), st.sampled_from(["a.example", "b.example", "c.example"]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(customers=st.lists(EMAILS, min_size=1, max_size=6, unique=True),
       accounts=st.dictionaries(st.sampled_from(["a.example", "b.example", "c.example"]), st.booleans()),
       contact_accounts=st.dictionaries(EMAILS, st.sampled_from(["a.example", "b.example", "c.example"])),
       records=st.lists(st.tuples(EMAILS, st.sampled_from(list(MatchKey))), max_size=12))
def test_no_record_of_one_customer_is_shown_beside_anothers(
        services: Services, customers: list[tuple[str, str]], accounts: dict[str, bool],
        contact_accounts: dict[tuple[str, str], str], records: list[tuple[tuple[str, str], MatchKey]]) -> None:
    run = uuid.uuid4().hex[:8]  # every example in a world of its own: domains, types and sources are new

    def email(pair: tuple[str, str]) -> str:
        return f"{pair[0]}@{run}{pair[1]}"

    app = services.app
    account_of = {domain: app.upsert_account(None, f"{domain} {run}", [f"{run}{domain}"]).id
                  for domain, exists in accounts.items() if exists}
    every_account = dict(account_of)
    for pair, domain in contact_accounts.items():
        account = every_account.get(domain) or app.upsert_account(None, f"x{domain} {run}", []).id
        every_account.setdefault(domain, account)
        app.upsert_contact(email(pair), None, account_id=account)
    sources = [app.create_sidebar_source(source(key.value, f"t{run}{key.value.lower()}", key)).id
               for key in MatchKey]
    for i, (pair, key) in enumerate(records):
        address = email(pair)
        account = every_account.get(contact_accounts.get(pair, "")) or account_of.get(pair[1])
        match = {MatchKey.CUSTOMER_EMAIL: {"email": address}, MatchKey.EMAIL_DOMAIN: {"email": address},
                 MatchKey.CONTACT: {"contact": contact_id(address)}, MatchKey.ACCOUNT: {"account": account}}[key]
        push(services, f"t{run}{key.value.lower()}", f"{i}", fields={"owner": address,
                                                                     "account": str(account)}, **match)
    shown = resolve(services, *(email(c) for c in customers))
    for pair, sections in zip(customers, shown, strict=True):
        address = email(pair)
        own_account = every_account.get(contact_accounts.get(pair, "")) or account_of.get(pair[1])
        for section in sections:
            for record in section.records:
                owner, key = str(record.fields["owner"]), MatchKey(section.title)
                if key is MatchKey.CUSTOMER_EMAIL:
                    assert owner == address
                elif key is MatchKey.EMAIL_DOMAIN:
                    assert owner.rpartition("@")[2] == address.rpartition("@")[2]
                elif key is MatchKey.CONTACT:
                    assert owner == address and pair in contact_accounts
                else:
                    assert own_account is not None and record.fields["account"] == str(own_account)
    for source_id in sources:
        app.delete_sidebar_source(source_id)
