"""Full-text search over conversations: a view with one row per conversation holding its
searchable words, and the query language that reads it (ConversationFilter.text).

What is indexed: the subject and the customer's address (`jane.doe@acme.example` as the words
jane, doe, acme, example: searching `acme`, `jane` or the whole address finds it) in `head`; the
text of its messages, inbound and replies, in `body`, without their quoted lines ('> ...', the
thread's earlier messages again), the latest BODY_CAP characters only (a huge thread does not
make the index explode; its oldest text falls out). Both are stored as
words already folded here, in Python, the same way on both backends: lower-cased (casefold),
diacritics removed (NFKD without combining marks: Müller -> muller, façade -> facade), split on
everything that is not a letter or a digit; words longer than MAX_WORD are not indexed.

The index: on SQLite an FTS5 table (`rm_search_fts`, external content: rm_search, kept in step
by triggers on it), its rowid `n` ordered like the conversation's sort_key, so that a page is
read newest first straight from the index and stops after `first` matches; on PostgreSQL a
generated `tsvector` column ('simple' configuration: nothing stemmed, no stop words) with a GIN
index, over the words and (`pairs`) each two adjacent words as one lexeme, so that a phrase
is found through the index too, not by testing every conversation holding its words. The view
writes rm_search through the usual Rows unit of work; the index follows from
the table (triggers, a generated column), on rebuilds' scratch tables as on live ones.

The query language (parse): words, all of which must match; an unquoted word of
PREFIX_MIN characters or more also matches as a prefix (`invo` finds invoice: a search-as-you-type
inbox), shorter ones only whole; "quoted phrases" match those words next to each other, in order,
whole (no prefix); a word with punctuation inside (`jane@acme.example`, `order-1042`) is a
phrase of its parts, its last part a prefix. Anything else (operators, quotes left open, `*`,
`:`, SQL) is only punctuation, never syntax: the query is rebuilt from the words alone, so it
cannot fail. No words: no text filter. At most MAX_TERMS terms of at most MAX_PHRASE words are
used (the rest is ignored); a query word longer than MAX_WORD matches nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from adapters.blobs import read_many
from adapters.database import Tx
from domain.conversation import Conversation
from domain.customers import Erasure
from domain.personal import ERASED_TEXT
from domain.reply import Reply
from projections.conversations import message_text
from projections.tables import Rows, Table
from projections.view import View, dispatch, on
from projections.view import event_id as _id
from projections.view import event_time as _at

BODY_CAP = 64 * 1024  # characters of message text indexed per conversation (the latest)
MAX_WORD = 64  # longer "words" (base64, hashes) are not indexed
PREFIX_MIN = 3  # unquoted words this long or longer match as prefixes too
MAX_TERMS = 16
MAX_PHRASE = 16
_WORD = re.compile(r"[^\W_]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SearchTable(Table):
    """rm_search and its index: an FTS5 table kept by triggers (SQLite), or a generated
    tsvector column with a GIN index (PostgreSQL). Dropping the table drops its index."""

    def create(self, tx: Tx, prefix: str = "") -> None:
        super().create(tx, prefix)
        name = f"{prefix}{self.name}"
        if _postgres(tx):
            tx.execute(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS "
                       "(to_tsvector('simple', coalesce(head, '') || ' ' || coalesce(body, '') || ' ' || "
                       "coalesce(pairs, ''))) STORED")
            tx.execute(f"CREATE INDEX IF NOT EXISTS {name}_tsv ON {name} USING gin (tsv)")
            return
        fts = f"{name}_fts"
        tx.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(head, body, content='{name}', "
                   "content_rowid='n', tokenize='unicode61 remove_diacritics 2')")
        insert = f"INSERT INTO {fts} (rowid, head, body) VALUES (new.n, new.head, new.body);"
        delete = f"INSERT INTO {fts} ({fts}, rowid, head, body) VALUES ('delete', old.n, old.head, old.body);"
        tx.execute(f"CREATE TRIGGER IF NOT EXISTS {name}_ai AFTER INSERT ON {name} BEGIN {insert} END")
        tx.execute(f"CREATE TRIGGER IF NOT EXISTS {name}_ad AFTER DELETE ON {name} BEGIN {delete} END")
        tx.execute(f"CREATE TRIGGER IF NOT EXISTS {name}_au AFTER UPDATE ON {name} BEGIN {delete} {insert} END")

    def drop(self, tx: Tx, prefix: str = "") -> None:
        super().drop(tx, prefix)  # its triggers, its tsvector index with it
        if not _postgres(tx):
            tx.execute(f"DROP TABLE IF EXISTS {prefix}{self.name}_fts")


def _postgres(tx: Tx) -> bool:
    return tx._postgres


T, B = "TEXT", "BIGINT"
# A match's conversation, and a conversation's n, read from an index alone, not from the (large) row.
SEARCH = SearchTable("rm_search", {"conversation_id": T, "n": B, "head": T, "body": T, "pairs": T},
                     ("conversation_id",),
                     (("n", "conversation_id"), ("conversation_id", "n")))
FTS = f"{SEARCH.name}_fts"


def words(text: str) -> list[str]:
    """Folded words of `text`: lower case, no diacritics, split on all but letters and digits."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WORD.findall(folded)


def indexed(text: str) -> str:
    return " ".join(w for w in words(text) if len(w) <= MAX_WORD)


def rank(sort_key: str) -> int:
    """A conversation's rowid in the index, ordered as its sort_key ('<created_at>|<id>'):
    microseconds since 1970, then the top 10 bits of the id (ids compare as hex strings)."""
    created, _, conversation_id = sort_key.partition("|")
    moment = datetime.fromisoformat(created)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    top = int(conversation_id.replace("-", "")[:3] or "0", 16) >> 2
    return (micros << 10) | top


def pair(first: str, second: str) -> str:
    """Two adjacent words as one lexeme (PostgreSQL): a GIN index cannot tell adjacent words
    from words apart, so a phrase of common words would test every conversation holding both."""
    return "p" + hashlib.blake2b(f"{first} {second}".encode(), digest_size=6).hexdigest()


def pairs(rows: Rows, head: str, body: str) -> str:
    """The distinct adjacent-word lexemes of head and body, on PostgreSQL (FTS5 knows positions)."""
    return pairs_of(head, body) if _postgres(rows.tx) else ""


def pairs_of(head: str, body: str) -> str:
    found = f"{head} {body}".split()
    return " ".join(dict.fromkeys(pair(a, b) for a, b in itertools.pairwise(found)))


def opened(e: Conversation.Opened, rows: Rows) -> None:
    sort_key = f"{_at(e)}|{_id(e)}"
    head = indexed(f"{e.subject} {e.customer_email}")
    rows.put(SEARCH, {"conversation_id": _id(e), "n": rank(sort_key), "head": head, "body": "",
                      "pairs": pairs(rows, head, "")})


def erased(e: Erasure.Erased, rows: Rows) -> None:
    """An erased customer's conversations indexed as a rebuild now indexes them: tombstones only."""
    head = indexed(f"{ERASED_TEXT} {e.customer}")
    for cid in e.conversation_ids:
        if rows.get(SEARCH, str(cid)) is not None:
            rows.update(SEARCH, str(cid), head=head, body="", pairs=pairs(rows, head, ""))


def unquoted(text: str) -> str:
    """The text without its quoted lines ('> ...'): earlier messages of the thread, indexed already."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def _append(rows: Rows, conversation_id: str, text: str) -> None:
    row = rows.get(SEARCH, conversation_id)
    added = indexed(unquoted(text))
    if row is None or not added:
        return
    body = f"{row['body']} {added}" if row["body"] else added
    if len(body) > BODY_CAP:
        body = body[-BODY_CAP:]
        body = body[body.find(" ") + 1:] if " " in body else ""
    rows.update(SEARCH, conversation_id, body=body, pairs=pairs(rows, row["head"], body))


def message_received(e: Conversation.MessageReceived, rows: Rows) -> None:
    _append(rows, _id(e), message_text(e.mail, rows))


def reply_queued(e: Reply.Queued, rows: Rows) -> None:
    data = read_many(rows.tx, [e.mail.text_blob]).get(e.mail.text_blob)
    _append(rows, str(e.conversation_id), "" if data is None else data.decode("utf-8", "replace"))


class Search(View):
    name = "search"
    version = 1
    tables = (SEARCH,)  # its shape includes the pairs' hashing: change the version if pair() changes
    handlers = dispatch(
        on(Conversation.Opened, opened),
        on(Conversation.MessageReceived, message_received),
        on(Reply.Queued, reply_queued),
        on(Erasure.Erased, erased),
    )


# the query language


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or a phrase
    prefix: bool  # the last word matches as a prefix


@dataclass(frozen=True)
class TextQuery:
    terms: tuple[Term, ...]
    impossible: bool = False  # a word no indexed text can hold (too long): matches nothing

    def fts5(self) -> str:
        """An FTS5 MATCH expression: each term a quoted string (quotes cannot occur in words)."""
        return " AND ".join(f'"{" ".join(t.words)}"' + (" *" if t.prefix else "") for t in self.terms)

    def tsquery(self) -> str:
        """A to_tsquery('simple', ...) expression: quoted lexemes, <-> for phrases, :* for prefixes."""
        def term(t: Term) -> str:
            parts = [f"'{w}'" for w in t.words]
            if t.prefix:
                parts[-1] += ":*"
            if len(parts) == 1:
                return parts[0]
            whole = t.words[:-1] if t.prefix else t.words  # a prefix is no word of a pair
            adjacent = [f"'{pair(a, b)}'" for a, b in itertools.pairwise(whole)]
            return f"({' & '.join([*adjacent, ' <-> '.join(parts)])})"
        return " & ".join(term(t) for t in self.terms)


def parse(text: str | None) -> TextQuery | None:
    """The user's text as a query (see the module's doc); None when it has no words."""
    if not text:
        return None
    terms: list[Term] = []
    impossible = False
    # Quoted phrases first ("..." closed; an unclosed quote is punctuation), then chunks between spaces.
    for quoted, loose in re.findall(r'"([^"]*)"|([^\s"]+)', text):
        if len(terms) >= MAX_TERMS:
            break
        chunk = quoted or loose
        found = words(chunk)[:MAX_PHRASE]
        if not found:
            continue
        if any(len(w) > MAX_WORD for w in found):
            impossible = True
        prefix = not quoted and len(found[-1]) >= PREFIX_MIN
        terms.append(Term(tuple(found), prefix))
    if not terms:
        return None
    return TextQuery(tuple(terms), impossible)
