"""End-to-end fixtures: the real `mailroom serve` as a subprocess, spoken to over HTTP.

Each test module gets its own fresh database per backend and starts its server(s) once;
servers are always terminated when the module is done.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import fresh_database
from tests.e2e import forked_cli

BACKENDS = ["sqlite", "postgres"]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def mailroom_executable() -> str:
    beside = Path(sys.executable).with_name("mailroom")
    found = str(beside) if beside.exists() else shutil.which("mailroom")
    if not found:
        pytest.fail("the `mailroom` console script is not installed", pytrace=False)
    return found


MAILROOM = mailroom_executable()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(mailroom_env: dict[str, str]) -> dict[str, str]:
    """This process's environment without any MAILROOM_* of its own, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(mailroom_env)
    return env


def run_mailroom(env: dict[str, str], *args: str, cwd: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILROOM, *args], env=process_env(env), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def cli_token(env: dict[str, str], cwd: Path, role: str, name: str, agent_id: str | None = None) -> str:
    """`mailroom token create` prints the token alone on stdout (run in a forked process:
    tests/e2e/forked_cli.py)."""
    args = ["token", "create", "--role", role, "--name", name]
    if agent_id:
        args += ["--agent-id", agent_id]
    code, stdout, stderr = forked_cli.run(process_env(env), args, cwd=str(cwd), timeout=30.0)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one token line, got {stdout!r}"
    return lines[0].strip()


_closed: list[subprocess.Popen[bytes]] = []


@atexit.register
def _reap_closed() -> None:
    for process in _closed:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


class GraphQLError(AssertionError):
    pass


class Server:
    """One `mailroom serve` subprocess; its stdout/stderr accumulate in files across restarts."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.env = env
        self.dir = directory
        self.stdout_path = directory / "server.stdout.log"
        self.stderr_path = directory / "server.stderr.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.client = httpx.Client(timeout=60.0)
        # Every GraphQL response body seen, with the query that produced it (for the secrets test).
        self.transcript: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.port = free_port()
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                [MAILROOM, "serve", "--port", str(self.port)], env=process_env(self.env), cwd=self.dir,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mailroom serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.client.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mailroom serve did not answer /healthz within {START_TIMEOUT}s:\n{self.log()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """At the end of the module: asked to stop (SIGTERM) and left to finish while the next
        module runs; waited for at exit (`_reap_closed`)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            _closed.append(process)
        self.client.close()

    def log(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.stdout_path, self.stderr_path) if p.exists()]
        return "\n".join(parts)

    # -- HTTP -------------------------------------------------------------------------------

    def post(self, query: str, variables: dict[str, Any] | None = None,
             token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = self.client.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                    headers=headers)
        self.transcript.append((query, response.text))
        return response

    def gql(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        """The `data` of a request that must succeed without GraphQL errors."""
        body = self.gql_raw(token, query, **variables)
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {body['errors']}")
        return dict(body["data"])

    def gql_raw(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        response = self.post(query, variables, token)
        assert response.status_code == 200, (response.status_code, response.text)
        return dict(response.json())


def error_codes(body: dict[str, Any]) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Module-scoped here, so each e2e module starts its server once per backend."""
    return str(request.param)


@pytest.fixture(scope="module")
def database_env(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The MAILROOM_* variables of a fresh database of this module's backend."""
    with fresh_database(backend, tmp_path_factory.mktemp(f"db-{backend}")) as env:
        yield dict(env)


@pytest.fixture(scope="module")
def start_server(
    database_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Server]]:
    """Starts `mailroom serve` on the module's database (extra MAILROOM_* may be given)."""
    started: list[Server] = []

    def start(**extra: str) -> Server:
        server = Server({**database_env, **extra}, tmp_path_factory.mktemp("server"))
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.close()
