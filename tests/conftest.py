"""Fixtures shared by all test packages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, bootstrap
from domain.ports import LoginRefused
from domain.values import MailProtocol, ServerSettings
from tests.backends import close_databases, fresh_database
from tests.discovery_fixture import autoconfig_server, dns_server  # noqa: F401
from tests.dovecot_fixture import dovecot  # noqa: F401
from tests.smtp_fixture import smtp, smtp_sink  # noqa: F401

BACKENDS = ["sqlite", "postgres"]
GOOD_PASSWORD = "right-password"


class FakeMailServer:
    """Accepts GOOD_PASSWORD and nothing else; remembers what it was asked."""

    def __init__(self) -> None:
        self.logins: list[tuple[MailProtocol, ServerSettings]] = []

    def __call__(self, protocol: MailProtocol, settings: ServerSettings, password: str) -> None:
        self.logins.append((protocol, settings))
        if password != GOOD_PASSWORD:
            raise LoginRefused("AUTH_FAILED", "the server refused the user name or password")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    close_databases()  # the PostgreSQL databases made ahead, or not yet dropped


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def environment(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[dict[str, str]]:
    """MAILROOM_* variables of a fresh database on the parametrised backend, set in os.environ.

    For a test that builds services in this process (`make_services`), a PostgreSQL database
    comes with the tables `bootstrap` creates, empty (see tests/backends.py); for any other, it
    is bare, as a first start finds it."""
    for name in ("MAILROOM_SECRET_KEY", "MAILROOM_ADMIN_TOKEN", "MAILROOM_EXTRA_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    initialised = "make_services" in request.fixturenames
    with fresh_database(backend, tmp_path, initialised=initialised) as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


@pytest.fixture
def make_services(environment: dict[str, str]) -> Iterator[Callable[..., Services]]:
    """Builds (and later closes) services over the test's database; call again to 'restart'."""
    made: list[Services] = []

    def make(verify_login: object | None = None, discover: object | None = None) -> Services:
        services = bootstrap(load_settings(), verify_login=verify_login or FakeMailServer(),  # type: ignore[arg-type]
                             discover=discover)  # type: ignore[arg-type]
        made.append(services)
        return services

    yield make
    for services in made:
        services.close()


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services()
