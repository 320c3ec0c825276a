"""Reply subjects, bodies and header checks (domain/replies.py) and the built message
(adapters/compose.py): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from adapters.compose import Draft, compose, new_message_id, thread_references
from domain.errors import Collector
from domain.replies import (
    Quoted,
    bare_subject,
    check_footer,
    check_header_value,
    reply_html,
    reply_subject,
    reply_text,
)

REF = "K7Q2M9XA"


@pytest.mark.parametrize("subject", [
    "Order late", "Re: Order late", "Re: Re: Order late", "RE: AW: Order late", "Fwd: Order late",
    "FW: RE: Order late", "Re[2]: Order late", "AW: WG: Order late", "SV: Order late", f"Re: Order late [#{REF}]",
    f"Re: [#{REF}] Re: Order late",
])
def test_prefixes_never_stack(subject: str) -> None:
    assert reply_subject("Re: {subject}", subject, "Acme Support", REF) == f"Re: Order late [#{REF}]"


def test_template_placeholders_and_one_reference() -> None:
    assert reply_subject("[{mailbox}] {subject}", "Re: Hello", "Acme", REF) == f"[Acme] Hello [#{REF}]"
    assert reply_subject("{conversation_ref} Re: {subject}", "Hello", "Acme", REF) == f"[#{REF}] Re: Hello"
    assert reply_subject("Re: {subject} {conversation_ref}", "Re: Hello", "Acme", REF) == f"Re: Hello [#{REF}]"


def test_words_that_look_like_prefixes_inside_a_subject_stay() -> None:
    assert bare_subject("Refund: please") == "Refund: please"
    assert bare_subject("Re: Fwd: AW: hello re: you") == "hello re: you"


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\u2028b", "a\u2029b", "a\x85b", "a\x0bb", "a\x0cb", "a\x00b"])
def test_header_values_with_any_line_break_are_refused(bad: str) -> None:
    errors = Collector()
    check_header_value(errors, ("subject",), bad, 100)
    assert [p.field for p in errors.problems] == [("subject",)]


def test_header_values_over_the_limit_are_refused() -> None:
    errors = Collector()
    check_header_value(errors, ("subject",), "x" * 101, 100)
    assert errors.problems and "at most 100" in errors.problems[0].message


def test_a_footer_may_have_lines_but_no_other_separators() -> None:
    ok, bad = Collector(), Collector()
    check_footer(ok, ("footer",), "-- \r\nThe team\nAcme")
    check_footer(bad, ("footer",), "-- \u2028Bcc: evil@example.com")
    assert not ok.problems and bad.problems


QUOTED = Quoted(sender="Jane Doe <jane@example.com>", date=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
                text="Where is my order?\n\nThanks")


def test_text_has_body_footer_and_the_quote() -> None:
    text = reply_text("It ships today.\r\nRegards", "-- \nAcme Support", QUOTED)
    assert text.startswith("It ships today.\nRegards\n\n-- \nAcme Support\n\nOn Mon, 30 Nov 2026 10:00 UTC, "
                           "Jane Doe <jane@example.com> wrote:\n> Where is my order?\n>\n> Thanks")


def test_html_escapes_what_the_agent_typed_and_quotes_in_a_blockquote() -> None:
    html = reply_html("<script>alert(1)</script> & more", "-- \nAcme", QUOTED)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<div class="footer">-- <br>\nAcme</div>' in html
    assert '<blockquote type="cite">Where is my order?<br>\n<br>\nThanks</blockquote>' in html


def _draft(**changes: object) -> Draft:
    values: dict[str, object] = dict(
        from_address="support@acme.example", from_name="Acme Support, Inc.", to=["jane@example.com"], cc=[],
        subject=f"Re: Order late [#{REF}]", date=datetime(2026, 11, 30, 11, 0, tzinfo=UTC),
        message_id=new_message_id("support@acme.example", REF, datetime(2026, 11, 30, 11, 0, tzinfo=UTC)),
        in_reply_to="abc@customer.example", references=["first@customer.example", "abc@customer.example"],
        text="Hello\n.\n-- \nAcme\n", html="<p>Hello</p>")
    values.update(changes)
    return Draft(**values)  # type: ignore[arg-type]


def test_the_built_message_parses_back_header_by_header() -> None:
    draft = _draft()
    raw = compose(draft)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["From"].addresses[0].display_name == "Acme Support, Inc."
    assert parsed["From"].addresses[0].addr_spec == "support@acme.example"
    assert parsed["To"].addresses[0].addr_spec == "jane@example.com"
    assert parsed["Message-ID"] == f"<{draft.message_id}>"
    assert draft.message_id.endswith("@acme.example") and REF.lower() in draft.message_id
    assert parsed["In-Reply-To"] == "<abc@customer.example>"
    assert parsed["References"] == "<first@customer.example> <abc@customer.example>"
    assert parsed["Subject"] == draft.subject
    assert parsed["Date"].datetime == draft.date
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == draft.text
    assert html is not None and html.get_content().strip() == "<p>Hello</p>"


def test_unicode_names_and_subjects_are_encoded_not_raw() -> None:
    raw = compose(_draft(from_name="Müller Support", subject="Re: Größe [#K7Q2M9XA]"))
    assert all(b < 128 for b in raw.split(b"\r\n\r\n", 1)[0])
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Re: Größe [#K7Q2M9XA]"
    assert parsed["From"].addresses[0].display_name == "Müller Support"


def test_references_keep_the_first_and_latest_and_drop_unusable_ids() -> None:
    chain = [f"m{i}@x.example" for i in range(40)] + ["bad id@x", "ünï@x", "ok@x"]
    refs = thread_references(chain)
    assert refs[0] == "m0@x.example" and refs[-1] == "ok@x" and len(refs) == 20
    assert "bad id@x" not in refs and "ünï@x" not in refs
