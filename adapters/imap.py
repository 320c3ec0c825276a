"""Reading mail over IMAP for mail intake: one `ImapSession` is one logged-in connection.

The session only reads. Folders are opened read-only (EXAMINE), bodies are fetched with
`BODY.PEEK[...]`, so nothing is marked \\Seen, and nothing is ever flagged, moved or
deleted. What to remember between syncs (UIDVALIDITY, the highest UID taken in) and how to
split work into batches is the caller's business.

Errors:
* `LoginFailed` (from the constructor): exactly as `adapters.mailserver.verify_login`.
* `ConnectionLost` (an OSError): the connection broke or the server did not answer within
  `timeout`. The session is unusable afterwards; every further call raises it again.
* `CommandFailed`: the server refused a command (NO/BAD) or sent something unparseable; the
  session can still be used. `FolderMissing` is the CommandFailed of `open_folder`.

Every network step is bounded by `timeout` (connect, TLS, each read and write);
`idle_wait` waits for at most its own timeout plus one round trip. A session is not
thread-safe: use one per thread.
"""

from __future__ import annotations

import contextlib
import imaplib
import math
import re
import selectors
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

# imapclient ships no type information (pyproject sets ignore_missing_imports): its names
# are Any to mypy, so values taken from it are converted explicitly below.
from imapclient.response_parser import parse_fetch_response

from adapters.mailserver import CommandFailed, ConnectionLost, LoginFailed, _server_text, open_imap
from domain.values import ServerSettings

__all__ = [
    "CommandFailed",
    "ConnectionLost",
    "FolderMissing",
    "FolderStatus",
    "ImapSession",
    "LoginFailed",
]

# `UID SEARCH` answers in a single line, and imaplib refuses lines longer than 1,000,000
# bytes. Asking for at most this many UIDs per SEARCH keeps the line under ~220 kB (UIDs
# have at most 10 digits), however large the mailbox.
SEARCH_WINDOW = 20_000

_MAX_UID: Final = 2**32 - 1  # UIDs are 32-bit unsigned (RFC 3501 nz-number)

# Untagged responses seen while idling. EXISTS is how a server announces a new message;
# RECENT (IMAP4rev1) accompanies it on some servers.
_NEWS: Final = re.compile(rb"\* (\d+) (EXISTS|RECENT)\b", re.IGNORECASE)
_BYE: Final = re.compile(rb"\* BYE\b", re.IGNORECASE)
_UNSELECTABLE: Final = frozenset({b"\\noselect", b"\\nonexistent"})


@dataclass(frozen=True)
class FolderStatus:
    """What EXAMINE reported for a folder. A changed `uidvalidity` invalidates every UID
    remembered for the folder. `uidnext` is None if the server did not send it."""

    uidvalidity: int
    uidnext: int | None
    exists: int


class FolderMissing(CommandFailed):
    """`open_folder` was given a folder that does not exist (or cannot be selected)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the folder {name!r} does not exist on the server")
        self.name = name
        # So that unpickling calls FolderMissing(name) again.
        self.args = (name,)


class ImapSession:
    """One logged-in IMAP connection; a context manager that closes it on exit."""

    def __init__(
        self,
        settings: ServerSettings,
        password: str,
        *,
        extra_ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._timeout = timeout
        # Raises LoginFailed; the timeout stays on the socket for every later read/write.
        self._client: Any = open_imap(settings, password, extra_ca_file=extra_ca_file, timeout=timeout)
        self._lost: ConnectionLost | None = None
        self._closed = False
        self._folder: str | None = None
        self._uidnext: int | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- folders ---------------------------------------------------------------------------

    def folders(self) -> list[str]:
        """The names of all folders that can be opened (LIST, without \\Noselect ones)."""
        with self._io("LIST") as client:
            entries = client.list_folders()
        names = []
        for flags, _delimiter, name in entries:
            if {bytes(flag).lower() for flag in flags} & _UNSELECTABLE:
                continue
            names.append(name if isinstance(name, str) else bytes(name).decode("utf-8", "replace"))
        return names

    def open_folder(self, name: str) -> FolderStatus:
        """Open `name` read-only; later calls act on it. Raises FolderMissing if it is absent."""
        # A SELECT/EXAMINE that fails leaves no folder selected (RFC 3501 6.3.1).
        self._folder = self._uidnext = None
        with self._io(f"EXAMINE {name!r}") as client:
            try:
                response = client.select_folder(name, readonly=True)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                # Dovecot says "NO Mailbox doesn't exist" without the [NONEXISTENT] code, so
                # LIST decides.
                if "NONEXISTENT" in str(exc).upper() or not client.folder_exists(name):
                    raise FolderMissing(name) from exc
                raise
            # The counts in the EXAMINE answer are the folder as opened, not news: a caller
            # that needs it synced syncs after opening (and IDLE then reports what comes later).
            for key in ("EXISTS", "RECENT"):
                client._imap.untagged_responses.pop(key, None)
        uidvalidity = response.get(b"UIDVALIDITY")
        if uidvalidity is None:
            raise CommandFailed(f"the server sent no UIDVALIDITY for the folder {name!r}")
        uidnext = response.get(b"UIDNEXT")
        status = FolderStatus(int(uidvalidity), None if uidnext is None else int(uidnext), int(response[b"EXISTS"]))
        self._folder, self._uidnext = name, status.uidnext
        return status

    # -- messages in the open folder -------------------------------------------------------

    def new_uids(self, after_uid: int) -> list[int]:
        """The UIDs greater than `after_uid` in the open folder, ascending."""
        if after_uid < 0:
            raise ValueError(f"after_uid must not be negative, got {after_uid}")
        self._need_folder()
        if after_uid >= _MAX_UID:
            return []
        found: set[int] = set()
        start = after_uid + 1
        with self._io("UID SEARCH") as client:
            # Whole windows while the mailbox is known to reach beyond them (UIDNEXT from
            # EXAMINE); mail that arrived since is caught by the open-ended search.
            while self._uidnext is not None and self._uidnext - start > SEARCH_WINDOW:
                end = start + SEARCH_WINDOW - 1
                found.update(int(uid) for uid in client.search(["UID", f"{start}:{end}"]))
                start = end + 1
            found.update(int(uid) for uid in client.search(["UID", f"{start}:*"]))
        # "n:*" includes the highest UID even when that is below n: keep only newer ones.
        return sorted(uid for uid in found if uid > after_uid)

    def sizes(self, uids: Iterable[int]) -> dict[int, int]:
        """RFC822.SIZE of each message (as the server serves it, CRLF line ends)."""
        return {uid: int(value) for uid, value in self._fetch(uids, "RFC822.SIZE", b"RFC822.SIZE").items()}

    def fetch(self, uids: Iterable[int]) -> dict[int, bytes]:
        """The full raw messages, in one UID FETCH of BODY.PEEK[] (\\Seen stays unset).

        UIDs that no longer exist (expunged meanwhile) are absent from the result.
        """
        return {uid: bytes(value) for uid, value in self._fetch(uids, "BODY.PEEK[]", b"BODY[]").items()}

    def fetch_header(self, uids: Iterable[int]) -> dict[int, bytes]:
        """Only the header of each message (BODY.PEEK[HEADER], ends with the empty line)."""
        items = self._fetch(uids, "BODY.PEEK[HEADER]", b"BODY[HEADER]")
        return {uid: bytes(value) for uid, value in items.items()}

    # -- waiting for mail ------------------------------------------------------------------

    def supports_idle(self) -> bool:
        with self._io("CAPABILITY") as client:
            return bool(client.has_capability("IDLE"))

    def idle_wait(self, timeout: float) -> bool:
        """IDLE on the open folder until the server announces mail (EXISTS/RECENT) or
        `timeout` seconds pass; True if mail was announced.

        IDLE is always ended (DONE) before this returns, so the session is ready for the
        next command. Servers may drop an IDLE after 30 minutes: keep `timeout` below
        29 minutes and loop.
        """
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._need_folder()
        if not self.supports_idle():
            raise CommandFailed("the server does not support IDLE")
        deadline = time.monotonic() + timeout
        with self._io("IDLE") as client:
            imap = client._imap
            # News the server sent since the last command (between two IDLEs, or since the
            # folder was opened) counts: dropping it would leave that mail waiting for a poll.
            announced = any([imap.untagged_responses.pop(key, None) for key in ("EXISTS", "RECENT")])
            tag = imap._command("IDLE")
            # Wait for the continuation ("+ idling"); the server may refuse with a tag.
            while (line := imap._get_response()) is not None:
                if imap.tagged_commands.get(tag):
                    result, data = imap.tagged_commands.pop(tag)
                    raise CommandFailed(f"IDLE refused: {result} {_text(data)}")
                announced = _check_news(line) or announced
            if not announced:
                announced = self._wait_for_news(imap, tag, deadline)
            announced = self._end_idle(imap, tag) or announced
            # Nothing reads these; drop them so that long-running sessions do not grow.
            for key in ("EXISTS", "RECENT", "EXPUNGE", "FETCH"):
                imap.untagged_responses.pop(key, None)
        return announced

    def _wait_for_news(self, imap: Any, tag: bytes, deadline: float) -> bool:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._readable(imap, remaining):
                return False
            # Something arrived, so a whole response follows at once; this read has the
            # normal timeout.
            line = imap._get_response()
            if imap.tagged_commands.get(tag):
                return False  # the server ended the IDLE itself; _end_idle collects it
            if line is not None and _check_news(line):
                return True

    def _end_idle(self, imap: Any, tag: bytes) -> bool:
        announced = False
        if not imap.tagged_commands.get(tag):
            imap.send(b"DONE\r\n")
            while not imap.tagged_commands.get(tag):
                line = imap._get_response()
                if line is not None and not imap.tagged_commands.get(tag):
                    announced = _check_news(line) or announced
        result, data = imap.tagged_commands.pop(tag)
        if result != "OK":
            raise CommandFailed(f"IDLE ended with {result} {_text(data)}")
        return announced

    def _readable(self, imap: Any, wait: float) -> bool:
        """Whether a response is waiting, waiting up to `wait` seconds for one."""
        sock = imap.sock
        # imaplib reads through a buffered file (and TLS has its own buffer): data may be
        # waiting there while the socket itself has nothing more. A non-blocking peek sees
        # both without consuming anything.
        sock.settimeout(0.0)
        try:
            if imap.file.peek(1):
                return True
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
        finally:
            sock.settimeout(self._timeout)
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            # Also true at EOF or on a reset: the read that follows then reports it.
            return bool(selector.select(wait))

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """LOGOUT (if the connection still works) and close; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if self._lost is None:
                self._client.logout()
        with contextlib.suppress(Exception):
            self._client.shutdown()

    # -- internals -------------------------------------------------------------------------

    def _need_folder(self) -> None:
        if self._folder is None:
            raise RuntimeError("no folder is open: call open_folder() first")

    @contextlib.contextmanager
    def _io(self, action: str) -> Iterator[Any]:
        """Hand out the client for one exchange and translate what goes wrong in it."""
        if self._lost is not None:
            raise ConnectionLost(f"the connection was lost before: {self._lost.message}", self._lost.timed_out)
        if self._closed:
            raise ConnectionLost("the session is closed")
        try:
            yield self._client
        except (CommandFailed, ConnectionLost) as exc:  # ours, raised inside the block
            if isinstance(exc, ConnectionLost):
                self._lose(exc)
            raise
        except (imaplib.IMAP4.abort, OSError) as exc:  # abort: EOF, BYE; OSError: reset, TLS, timeout
            if isinstance(exc, TimeoutError):
                lost = ConnectionLost(f"{action}: the server did not answer within {self._timeout:g} s", True)
            else:
                lost = ConnectionLost(f"{action}: the connection was lost ({_describe(exc)})")
            raise self._lose(lost) from exc
        except imaplib.IMAP4.error as exc:
            text = _server_text(exc, "")
            if "got more than" in text:
                # imaplib's line limit: the rest of that line is still unread, so the
                # connection is out of step from here on.
                raise self._lose(ConnectionLost(f"{action}: {text}")) from exc
            raise CommandFailed(f"{action} failed: {text}") from exc
        except Exception:
            # Raised by our own code or a parser after the exchange: still in step.
            raise
        except BaseException:
            # KeyboardInterrupt and the like may have stopped us mid-response.
            self._lose(ConnectionLost(f"{action}: interrupted"))
            raise

    def _lose(self, lost: ConnectionLost) -> ConnectionLost:
        self._lost = lost
        with contextlib.suppress(Exception):
            self._client.shutdown()
        return lost

    def _fetch(self, uids: Iterable[int], item: str, key: bytes) -> dict[int, Any]:
        wanted = _valid_uids(uids)
        if not wanted:
            return {}
        self._need_folder()
        with self._io(f"UID FETCH {item}") as client:
            imap = client._imap
            # Not imapclient's fetch(): it raises on a NO, and RFC 2180 (4.1.2) lets a server
            # answer NO when some of the messages were expunged, with the others delivered.
            imap.untagged_responses.pop("FETCH", None)
            tag = imap._command("UID", "FETCH", _sequence_set(wanted), f"({item})")
            result, data = imap._command_complete("FETCH", tag)  # BAD raises IMAP4.error
            untagged = imap.untagged_responses.pop("FETCH", [])
            if result != "OK" and not untagged and "EXPUNGEISSUED" not in _text(data).upper():
                raise CommandFailed(f"UID FETCH {item} refused: {result} {_text(data)}")
            parsed = parse_fetch_response(untagged, True, True) if untagged else {}
        # Unsolicited FETCH responses (flag changes by other clients) lack the item; a
        # message expunged meanwhile comes as NIL (Dovecot) or not at all.
        return {
            int(uid): values[key]
            for uid, values in parsed.items()
            if uid in wanted and values.get(key) is not None
        }


def _valid_uids(uids: Iterable[int]) -> set[int]:
    wanted = set()
    for uid in uids:
        if isinstance(uid, bool) or not isinstance(uid, int) or not 0 < uid <= _MAX_UID:
            raise ValueError(f"not a UID: {uid!r}")
        wanted.add(uid)
    return wanted


def _sequence_set(uids: Iterable[int]) -> str:
    """'1:3,7,9:10' for {1, 2, 3, 7, 9, 10}: short even for long runs of UIDs."""
    ordered = sorted(uids)
    parts = []
    start = previous = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        parts.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(parts)


def _check_news(line: bytes) -> bool:
    """True if an untagged response announces mail; raises if it is the server's BYE."""
    if _BYE.match(line):
        raise imaplib.IMAP4.abort(f"the server closed the connection: {_text([line])}")
    match = _NEWS.match(line)
    # "* 0 RECENT" (or "* 0 EXISTS" after everything was expunged) is no news.
    return match is not None and int(match.group(1)) > 0


def _text(data: Any) -> str:
    """The first item of an imaplib response as one line of text."""
    first = data[0] if data else b""
    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    return " ".join(text.split())[:160]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, imaplib.IMAP4.abort):
        return _server_text(exc, "")
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
