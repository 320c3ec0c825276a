"""URL templates of HTTP sidebar sources (DESIGN 7): what check_template refuses, how
fill_template encodes, and when it gives no URL at all."""

from __future__ import annotations

import pytest

from adapters.sidebar_http import PLACEHOLDERS, check_template, fill_template

VALUES: dict[str, str | None] = {"customer_email": "a+b@acme.example", "email_domain": "acme.example",
                                 "contact_id": "c/1 2", "account_id": None}


@pytest.mark.parametrize("template", [
    "https://erp.example/api/orders?email={customer_email}",
    "http://erp.example:8080/customers/{contact_id}/orders",
    "https://erp.example/domains/{email_domain}?contact={contact_id}&account={account_id}",
    "https://erp.example/static",
    "HTTPS://ERP.example/x?e={customer_email}",
    "https://[2001:db8::1]:8443/x/{contact_id}",
])
def test_good_templates(template: str) -> None:
    assert check_template(template) == []


@pytest.mark.parametrize(("template", "words"), [
    ("ftp://erp.example/{customer_email}", "http:// or https://"),
    ("erp.example/orders?email={customer_email}", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
    ("https://erp.example/?email={email}", "unknown placeholder {email}"),
    ("https://erp.example/?email={Customer_Email}", "unknown placeholder"),
    ("https://erp.example/?email={customer_email", "unbalanced braces"),
    ("https://erp.example/?email=customer_email}", "unbalanced braces"),
    ("https://erp.example/?email={{customer_email}}", "unbalanced braces"),
    ("https://{email_domain}/orders", "not in the host"),
    ("https://erp.{email_domain}/orders", "not in the host"),
    ("https://erp.example:{contact_id}/orders", "not in the host"),
    ("https://{contact_id}@erp.example/orders", "not in the host"),
    ("https://user:pw@erp.example/orders", "credentials"),
    ("https:///orders?x={contact_id}", "no host"),
    ("https://erp.example:99999/x", "port"),
    ("https://erp.example:0/x", "port 0"),
    ("https://erp.example/x#{contact_id}", "#fragment"),
    ("https://erp.example/x y", "spaces"),
    (" https://erp.example/x", "spaces"),
    ("https://erp.example/x\n", "control characters"),
    ("https://[::1/x", "not a valid URL"),
])
def test_bad_templates(template: str, words: str) -> None:
    problems = check_template(template)
    assert any(words in p for p in problems), problems


def test_every_problem_is_listed() -> None:
    problems = check_template("ftp://{email_domain}/{nope}")
    assert len(problems) == 3


def test_fill_encodes_every_value_completely() -> None:
    url = fill_template("https://erp.example/c/{contact_id}/o?email={customer_email}&d={email_domain}", VALUES)
    assert url == "https://erp.example/c/c%2F1%202/o?email=a%2Bb%40acme.example&d=acme.example"


def test_fill_non_ascii_as_utf8() -> None:
    url = fill_template("https://erp.example/?email={customer_email}", {"customer_email": "zoë@exämple.de"})
    assert url == "https://erp.example/?email=zo%C3%AB%40ex%C3%A4mple.de"


@pytest.mark.parametrize("missing", [None, ""])
def test_no_url_when_a_used_placeholder_has_no_value(missing: str | None) -> None:
    assert fill_template("https://erp.example/?account={account_id}", {**VALUES, "account_id": missing}) is None
    assert fill_template("https://erp.example/?account={account_id}", {}) is None


def test_unused_missing_values_do_not_matter() -> None:
    assert fill_template("https://erp.example/?d={email_domain}", VALUES) == "https://erp.example/?d=acme.example"
    assert fill_template("https://erp.example/static", {}) == "https://erp.example/static"


def test_placeholder_names() -> None:
    assert PLACEHOLDERS == ("customer_email", "email_domain", "contact_id", "account_id")
