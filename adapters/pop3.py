"""Reading mail over POP3 for mail intake: one `Pop3Session` is one logged-in connection.

Mail is never deleted: there is no DELE here, and `close` ends with QUIT. Message numbers
are only valid within one session; UIDL strings identify a message across sessions.
(Servers may still record what RETR read: Dovecot sets \\Seen on retrieved messages at
QUIT, which IMAP users of the same mailbox can see.)

Errors:
* `LoginFailed` (from the constructor): exactly as `adapters.mailserver.verify_login`.
* `ConnectionLost` (an OSError): the connection broke or the server did not answer within
  `timeout`. The session is unusable afterwards; every further call raises it again.
* `CommandFailed`: the server answered -ERR (e.g. no such message); the session can still
  be used.

Every network step is bounded by `timeout` (connect, TLS, each read and write). Response
lines may be up to `adapters.mailserver.POP3_MAX_LINE` (10 MiB) long, not poplib's 2048
bytes. A session is not thread-safe: use one per thread.
"""

from __future__ import annotations

import contextlib
import poplib
import ssl
from collections.abc import Iterator
from types import TracebackType
from typing import Self

from adapters.mailserver import POP3_MAX_LINE, CommandFailed, ConnectionLost, LoginFailed, open_pop3
from domain.values import ServerSettings

__all__ = ["CommandFailed", "ConnectionLost", "LoginFailed", "Pop3Session"]

# poplib's markers (str, unlike the server's replies, which are bytes).
_EOF = "-ERR EOF"
_TOO_LONG = "line too long"


class Pop3Session:
    """One logged-in POP3 connection; a context manager that closes it (QUIT) on exit."""

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
        self._conn = open_pop3(settings, password, extra_ca_file=extra_ca_file, timeout=timeout)
        self._lost: ConnectionLost | None = None
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def listing(self) -> list[tuple[int, str, int]]:
        """(message number, UIDL, size in octets) of every message, by message number."""
        with self._io("UIDL") as conn:
            _, uidl_lines, _ = conn.uidl()
        with self._io("LIST") as conn:
            _, list_lines, _ = conn.list()
        uidls = dict(_pairs(uidl_lines, "UIDL"))
        sizes = {number: _int(value, "LIST") for number, value in _pairs(list_lines, "LIST")}
        if uidls.keys() != sizes.keys():
            raise CommandFailed("the server's UIDL and LIST answers name different messages")
        return [(number, uidls[number], sizes[number]) for number in sorted(sizes)]

    def retrieve(self, number: int) -> bytes:
        """The whole message (RETR), dot-unstuffed, every line ended with CRLF.

        Its length is the size LIST reports (for servers that count CRLF line ends, as
        Dovecot does).
        """
        with self._io(f"RETR {number}") as conn:
            _, lines, _ = conn.retr(_number(number))
        return _join(lines)

    def top(self, number: int, lines: int = 0) -> bytes:
        """The header, the empty line after it and the first `lines` body lines (TOP)."""
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            raise ValueError(f"lines must be a non-negative int, got {lines!r}")
        with self._io(f"TOP {number} {lines}") as conn:
            _, got, _ = conn.top(_number(number), lines)
        return _join(got)

    def close(self) -> None:
        """QUIT (never DELE) if the connection still works, and close; safe to repeat."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if self._lost is None:
                self._conn.quit()
        with contextlib.suppress(Exception):
            self._conn.close()

    @contextlib.contextmanager
    def _io(self, action: str) -> Iterator[poplib.POP3]:
        """Hand out the connection for one exchange and translate what goes wrong in it."""
        if self._lost is not None:
            raise ConnectionLost(f"the connection was lost before: {self._lost.message}", self._lost.timed_out)
        if self._closed:
            raise ConnectionLost("the session is closed")
        try:
            yield self._conn
        except poplib.error_proto as exc:
            reply = exc.args[0] if exc.args else ""
            if reply == _EOF:
                raise self._lose(ConnectionLost(f"{action}: the server closed the connection")) from exc
            if reply == _TOO_LONG:
                # The rest of that line is still unread: out of step from here on.
                message = f"{action}: the server sent a line longer than {POP3_MAX_LINE} bytes"
                raise self._lose(ConnectionLost(message)) from exc
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            raise CommandFailed(f"{action} failed: {' '.join(text.split())[:160]}") from exc
        except OSError as exc:  # reset, TLS error, timeout
            if isinstance(exc, TimeoutError):
                lost = ConnectionLost(f"{action}: the server did not answer within {self._timeout:g} s", True)
            elif isinstance(exc, ssl.SSLError):
                lost = ConnectionLost(f"{action}: the connection was lost (TLS: {exc.reason or exc})")
            else:
                lost = ConnectionLost(f"{action}: the connection was lost ({exc.strerror or exc})")
            raise self._lose(lost) from exc
        except Exception:
            raise
        except BaseException:
            # KeyboardInterrupt and the like may have stopped us mid-response.
            self._lose(ConnectionLost(f"{action}: interrupted"))
            raise

    def _lose(self, lost: ConnectionLost) -> ConnectionLost:
        self._lost = lost
        with contextlib.suppress(Exception):
            self._conn.close()
        return lost


def _number(number: int) -> int:
    # An int, so that nothing but digits ends up in the command line.
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"not a POP3 message number: {number!r}")
    return number


def _join(lines: list[bytes]) -> bytes:
    # Each line of a multi-line answer ended with CRLF before poplib stripped it.
    return b"".join(line + b"\r\n" for line in lines)


def _pairs(lines: list[bytes], command: str) -> Iterator[tuple[int, str]]:
    for line in lines:
        parts = line.split()
        if len(parts) != 2:
            raise CommandFailed(f"unexpected {command} line from the server: {line[:80]!r}")
        yield _int(parts[0], command), parts[1].decode("ascii", "replace")


def _int(value: bytes | str, command: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise CommandFailed(f"unexpected {command} value from the server: {value!r}") from None
