"""TCP endpoints on loopback that misbehave: for probes that must not hang or leak.

`BlackHole` accepts every connection and never says anything (a server that answers the TCP
handshake, then nothing: the client waits for a greeting until its timeout); it records what
clients send, so a test can assert that, say, a password never arrived. `DeadPort` is a bound
but not listening socket: connecting to it is refused at once ("unreachable").
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

from tests.dovecot import HOST


class BlackHole:
    """Accepts connections on `host`:`port`, reads what arrives, never writes a byte."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self._listener = socket.create_server((host, 0), backlog=64)
        # close() from another thread does not wake a blocked accept(): poll instead.
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._connections = 0
        self._received = bytearray()
        self._clients: list[socket.socket] = []
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept_loop, name="blackhole-accept", daemon=True)]
        self._threads[0].start()

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def received(self) -> bytes:
        """Everything any client sent, in arrival order."""
        with self._lock:
            return bytes(self._received)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(OSError):
                client.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            client.settimeout(0.05)
            with self._lock:
                self._connections += 1
                self._clients.append(client)
            thread = threading.Thread(target=self._read, args=(client,), name="blackhole-read", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _read(self, client: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                data = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._received.extend(data)


class DeadPort:
    """A loopback port that is bound but not listening: every connect is refused."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
