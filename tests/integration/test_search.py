"""Full-text search (ConversationFilter.text, projections/search.py) on both backends: words of
the subject, of an inbound mail's body, of a reply, the customer's address and its parts;
prefixes, quoted phrases, diacritics; hostile input never fails; with the other filters and an
agent's groups; through GraphQL with cursor pagination; and the view rebuilt from the log
equals the live one (its index with it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from uuid import UUID

import pytest

from adapters.inbound import arrivals
from api.bootstrap import Services
from api.graphql.common import Context
from api.graphql.schema import schema
from api.replies import queue_reply
from domain.commands.tokens import Principal
from domain.routing import RuleSpec
from domain.values import AssignmentStrategy, MailProtocol, Role, ServerSettings, TransportSecurity
from projections import conversation_queries, search
from projections.conversation_queries import ConversationFilter
from projections.rebuild import rebuild, verify
from tests.conftest import GOOD_PASSWORD

SUPPORT, SALES = "support@desk.example", "sales@desk.example"
IMAP = ServerSettings("imap.desk.example", 993, TransportSecurity.TLS, "")
SMTP = ServerSettings("smtp.desk.example", 587, TransportSecurity.STARTTLS, "")
ADMIN = Principal(Role.ADMIN, None, None)


def mail(sender: str, subject: str, body: str, to: str = SUPPORT, n: int = 0) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 30, 9, 0, tzinfo=UTC) + timedelta(minutes=n))
    message["Message-ID"] = make_msgid(domain="customer.example")
    message.set_content(body)
    return bytes(message)


class Desk:
    def __init__(self, services: Services) -> None:
        self.services = services
        app = services.app
        self.support = app.bind_mailbox(SUPPORT, GOOD_PASSWORD, "Support", MailProtocol.IMAP, IMAP, SMTP)[0].id
        self.sales = app.bind_mailbox(SALES, GOOD_PASSWORD, "Sales", MailProtocol.IMAP, IMAP, SMTP)[0].id
        self.n = 0

    def take_in(self, sender: str, subject: str, body: str, mailbox: str = SUPPORT) -> UUID:
        self.n += 1
        mailbox_id = self.support if mailbox == SUPPORT else self.sales
        result = self.services.app.take_in(mailbox_id, arrivals(
            [(f"imap:INBOX:1:{self.n}", mail(sender, subject, body, mailbox, self.n))], mailbox, self.services.blobs))
        self.settle()
        [conversation_id] = result.conversation_ids
        return UUID(str(conversation_id))

    def settle(self) -> None:
        head = self.services.projections.head()
        assert self.services.assigner.wait_for(head)
        assert self.services.projections.wait_for(self.services.projections.head())

    def find(self, text: str, **filters: Any) -> set[UUID]:
        rows, _ = self.services.conversations.rows(ConversationFilter(text=text, **filters), 100, None)
        found = {UUID(r["id"]) for r in rows}
        assert self.services.conversations.count(ConversationFilter(text=text, **filters)) == len(found), text
        return found


@pytest.fixture
def desk(services: Services) -> Desk:
    return Desk(services)


def test_words_of_subject_body_reply_and_address_prefixes_and_phrases(desk: Desk, services: Services) -> None:
    invoice = desk.take_in("Jane Müller <jane.mueller@acme.example>", "Invoice 1042 is wrong",
                           "Hello,\nthe amount on the invoice is twice the price. Kind regards, Jane Müller")
    parcel = desk.take_in("Bob <bob@globex.example>", "Where is my parcel?",
                          "The price is fine but the parcel never arrived. Tracking: ZX-99-Q")
    straße = desk.take_in("Zoë <zoe@initech.example>", "Façade repair at Hauptstraße",
                          "Grüße aus Köln. Please call me back.")
    queue_reply(services, parcel, None, "We have opened a claim with the carrier, reference KLM-5521.")
    desk.settle()

    assert desk.find("invoice") == {invoice}  # a subject word (and a body one)
    assert desk.find("INVOICE wrong") == {invoice}  # case; all words must match
    assert desk.find("invoice parcel") == set()
    assert desk.find("arrived") == {parcel}  # an inbound mail's body
    assert desk.find("carrier") == {parcel}  # a reply's text
    assert desk.find("klm-5521") == {parcel}  # a code as written: the phrase of its parts
    assert desk.find("price") == {invoice, parcel}
    # the customer's address, whole or by its parts
    assert desk.find("jane.mueller@acme.example") == {invoice}
    assert desk.find("acme") == {invoice}
    assert desk.find("acme.example") == {invoice}
    assert desk.find("mueller") == {invoice}
    assert desk.find("globex") == {parcel}
    assert desk.find("example") == {invoice, parcel, straße}
    # prefixes: every unquoted word of 3 characters or more; shorter ones whole
    assert desk.find("invo") == {invoice}
    assert desk.find("glob") == {parcel}
    assert desk.find("pri arr") == {parcel}
    assert desk.find("zx") == {parcel}  # a whole word of two characters
    assert desk.find("kl") == set()  # two characters are not a prefix
    # quoted phrases: the words together, in order, whole
    assert desk.find('"price is"') == {parcel}
    assert desk.find("price is") == {invoice, parcel}  # the same words apart
    assert desk.find("price twice") == {invoice}
    assert desk.find('"price twice"') == set()
    assert desk.find('"price is fine"') == {parcel}
    assert desk.find('"fine is price"') == set()
    assert desk.find('"invo"') == set()  # no prefix inside quotes
    assert desk.find('"twice the price" jane') == {invoice}
    # diacritics folded on both backends (here, before indexing: no unaccent needed)
    assert desk.find("muller") == {invoice}
    assert desk.find("Müller") == {invoice}
    assert desk.find("facade") == {straße}
    assert desk.find("zoe") == {straße}
    assert desk.find("grusse koln") == {straße}
    assert desk.find("hauptstrasse") == {straße}  # ß casefolds to ss
    assert desk.find("hauptstraße") == {straße}


HOSTILE = [
    '"', '""', '"""', '*', '**', 'a*', '*invoice', 'NEAR(invoice price)', 'NEAR(', ':', 'head:invoice', 'body : x',
    '&|!', '!invoice', 'invoice & !price', "'", "invoice'", "''; DROP TABLE rm_conversations; --",
    "1' OR '1'='1", "%", "_", "\\", "(", ")", "^invoice", "-invoice", "+", "invoice OR price", "AND", "NOT",
    "<->", "invoice:*", "a:*B", "\x00", "\u202e", "🙂", "x" * 10_000, "invoice " * 2_000, '"' + "y " * 5_000,
    "word" + "-" * 3_000 + "word", "é" * 500, "{" + "}" * 100,
]


def test_hostile_input_never_fails_and_an_empty_text_is_no_filter(desk: Desk, services: Services) -> None:
    invoice = desk.take_in("Jane <jane@acme.example>", "Invoice 1042", "the price is wrong")
    other = desk.take_in("Bob <bob@globex.example>", "Parcel", "never arrived")
    for text in HOSTILE:
        found = desk.find(text)
        assert found <= {invoice, other}, text
    for empty in ("", "   ", '"', "*", "&|!", "()", "\u200b", "-- ;"):
        assert desk.find(empty) == {invoice, other}, empty  # no words: no text filter
    assert desk.find("invoice'") == {invoice}
    assert desk.find('price* "invoice') == {invoice}  # `*` and an open quote are punctuation
    assert desk.find("NEAR(invoice price)") == set()  # words, not an operator: `near invoice` and price
    assert desk.find("x" * 10_000) == set()  # too long to be a word of any text
    assert desk.find("invoice " * 2_000) == {invoice}


def test_combined_with_status_and_an_agents_groups(desk: Desk, services: Services,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    app = services.app
    eve = app.create_agent("Eve", "eve@desk.example").id
    sam = app.create_agent("Sam", "sam@desk.example").id
    support_team = app.create_agent_group("Support team", [eve]).id
    sales_team = app.create_agent_group("Sales team", [sam]).id
    app.create_routing_rule(RuleSpec("Support", [desk.support], [support_team], AssignmentStrategy.ROUND_ROBIN))
    app.create_routing_rule(RuleSpec("Sales", [desk.sales], [sales_team], AssignmentStrategy.ROUND_ROBIN))
    first = desk.take_in("a@one.example", "Refund please", "refund for order 1")
    second = desk.take_in("b@two.example", "Refund again", "refund for order 2")
    in_sales = desk.take_in("c@three.example", "Refund for a quote", "refund the quote", mailbox=SALES)
    app.close_conversation(second)
    desk.settle()

    # SQLite: from the index, or from the conversations; PostgreSQL: the GIN index first, or a walk
    for selective, few in ((conversation_queries.SELECTIVE, conversation_queries.PG_FEW), (0, -1)):
        monkeypatch.setattr(conversation_queries, "SELECTIVE", selective)
        monkeypatch.setattr(conversation_queries, "PG_FEW", few)
        assert desk.find("refund") == {first, second, in_sales}
        assert desk.find("refund", status="CLOSED") == {second}
        assert desk.find("refund", group_ids=(str(support_team),)) == {first, second}
        assert desk.find("refund", group_ids=(str(sales_team),)) == {in_sales}
        assert desk.find("refund", group_ids=()) == set()
        assert desk.find("refund", mailbox_id=str(desk.sales)) == {in_sales}
        assert desk.find("refund", customer_email="a@one.example") == {first}
        assert desk.find("order", group_ids=(str(support_team), str(sales_team))) == {first, second}
        rows, more = services.conversations.rows(ConversationFilter(text="refund", mailbox_id=str(desk.support)), 1,
                                                 None)
        assert [UUID(r["id"]) for r in rows] == [second] and more
        rows, more = services.conversations.rows(ConversationFilter(text="refund", mailbox_id=str(desk.support)), 1,
                                                 rows[0]["sort_key"])
        assert [UUID(r["id"]) for r in rows] == [first] and not more
    monkeypatch.undo()

    # through GraphQL: an agent sees its groups' matches only, totalCount included
    query = """query($filter: ConversationFilter, $first: Int, $after: String) {
      conversations(filter: $filter, first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id subject } } } }"""
    as_eve = run(services, query, Principal(Role.AGENT, eve, None), filter={"text": "refund"})
    page = as_eve["conversations"]
    assert {UUID(e["node"]["id"]) for e in page["edges"]} == {first, second}
    assert page["totalCount"] == 2
    as_sam = run(services, query, Principal(Role.AGENT, sam, None), filter={"text": "refund", "status": "CLOSED"})
    assert as_sam["conversations"]["edges"] == [] and as_sam["conversations"]["totalCount"] == 0

    # an admin pages through the matches newest first, one at a time
    seen, after = [], None
    while True:
        answer = run(services, query, ADMIN, filter={"text": "refund"}, first=1, after=after)["conversations"]
        seen += [UUID(e["node"]["id"]) for e in answer["edges"]]
        if not answer["pageInfo"]["hasNextPage"]:
            break
        after = answer["pageInfo"]["endCursor"]
    assert seen == [in_sales, second, first]
    hostile = run(services, query, ADMIN, filter={"text": "\"refund* : ' &|! ( -"})["conversations"]
    assert {UUID(e["node"]["id"]) for e in hostile["edges"]} == {first, second, in_sales}


def test_a_long_thread_keeps_its_latest_text_and_the_view_rebuilds_equal(desk: Desk, services: Services,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "BODY_CAP", 200)
    conversation = desk.take_in("Jane <jane@acme.example>", "Long thread", "oldestword " + "filler " * 40)
    for n in range(3):
        queue_reply(services, conversation, None, f"answer{n} " + "padding " * 10)
    desk.settle()
    assert desk.find("answer2") == {conversation}
    assert desk.find("answer0") == set()  # fell out of the latest BODY_CAP characters
    assert desk.find("oldestword") == set()  # and so did the first mail, quoted in each reply: quotes are not indexed
    assert desk.find("long thread jane") == {conversation}  # subject and address stay
    desk.take_in("Bob <bob@globex.example>", "Another", "text")

    view = services.projections.views["search"]
    assert verify(services.projections, view) == []
    before = services.database.query("SELECT * FROM rm_search ORDER BY conversation_id")
    rebuild(services.projections, view)
    assert services.database.query("SELECT * FROM rm_search ORDER BY conversation_id") == before
    assert desk.find("answer2") == {conversation}  # the index follows a rebuild
    assert desk.find("globex") == {UUID(before[0]["conversation_id"]), UUID(before[1]["conversation_id"])} - {
        conversation}
    if not services.database.is_postgres:
        with services.database.transaction() as tx:  # the FTS5 index agrees with its content table
            tx.execute(f"INSERT INTO {search.FTS} ({search.FTS}) VALUES ('integrity-check')")
    with services.database.transaction() as tx:
        tx.execute("UPDATE rm_search SET body = 'tampered' WHERE conversation_id = ?", (str(conversation),))
    assert len(verify(services.projections, view)) == 1


def test_the_query_language() -> None:
    parsed = search.parse('Invo "Price is" jane@acme.ex NEAR( a')
    assert parsed is not None
    assert parsed.fts5() == '"invo" * AND "price is" AND "jane acme ex" AND "near" * AND "a"'
    price_is, jane_acme, acme_ex = search.pair("price", "is"), search.pair("jane", "acme"), search.pair("acme", "ex")
    assert parsed.tsquery() == (f"'invo':* & ('{price_is}' & 'price' <-> 'is') & ('{jane_acme}' & '{acme_ex}' & "
                                "'jane' <-> 'acme' <-> 'ex') & 'near':* & 'a'")
    assert search.parse(' "" * :: ') is None
    assert search.parse(None) is None
    many = search.parse(" ".join(f"w{n}" for n in range(100)))
    assert many is not None and len(many.terms) == search.MAX_TERMS
    assert search.words("Straße Müller ÉCOLE o'neil foo_bar") == ["strasse", "muller", "ecole", "o", "neil", "foo",
                                                                   "bar"]
    a = "2026-11-30T09:00:00+00:00|0a3e2b1c-0000-0000-0000-000000000000"
    b = "2026-11-30T09:00:00.000001+00:00|00000000-0000-0000-0000-000000000000"
    c = "2026-11-30T09:00:00.000001+00:00|ffffffff-0000-0000-0000-000000000000"
    assert search.rank(a) < search.rank(b) < search.rank(c)


def run(services: Services, query: str, principal: Principal, **variables: Any) -> dict[str, Any]:
    async def execute() -> Any:
        return await schema.execute(query, variable_values=variables,
                                    context_value=Context(services=services, principal=principal))

    result = asyncio.run(execute())
    assert result.errors is None, result.errors
    return dict(result.data or {})
