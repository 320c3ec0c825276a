"""adapters/settings.py checks every variable before anything is stored (issue 8); the
subprocess side is tests/e2e/test_startup_checks.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.settings import Settings, SettingsError, load_settings
from api.bootstrap import bootstrap
from tests.dovecot import _write_tls

SECRET = "unit-secret-key-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "ADMIN_TOKEN", "SECRET_KEY", "TIMEZONE", "POLL_SECONDS", "EXTRA_CA_FILE",
                 "DNS_SERVERS", "ALLOW_PRIVATE_HOSTS", "SEAL_EVERY"):
        monkeypatch.delenv(f"MAILROOM_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


def refused(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_both_postgres_spellings_need_a_secret_key(monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    url = f"{scheme}://u:p@db.example:5432/mailroom"

    message = refused(monkeypatch, MAILROOM_DATABASE_URL=url)

    assert message.startswith("MAILROOM_SECRET_KEY:")
    monkeypatch.setenv("MAILROOM_SECRET_KEY", SECRET)
    settings = load_settings()
    assert settings.is_postgres and settings.sqlite_path is None


def test_bootstrap_refuses_postgres_without_a_key_before_connecting() -> None:
    # Port 1 on the loopback: nothing listens, so any connection attempt would fail differently.
    settings = Settings(database_url="postgres://u@127.0.0.1:1/none")

    with pytest.raises(SettingsError, match=r"^MAILROOM_SECRET_KEY:"):
        bootstrap(settings)


def test_a_ca_file_must_hold_ca_certificates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copy("/etc/passwd", tmp_path / "passwd")

    message = refused(monkeypatch, MAILROOM_EXTRA_CA_FILE=str(tmp_path / "passwd"))

    assert message.startswith("MAILROOM_EXTRA_CA_FILE:") and "PEM" in message
    assert list(tmp_path.iterdir()) == [tmp_path / "passwd"]


def test_a_real_ca_file_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _write_tls(tmp_path)
    monkeypatch.setenv("MAILROOM_EXTRA_CA_FILE", str(tmp_path / "ca.pem"))

    assert load_settings().extra_ca_file == str(tmp_path / "ca.pem")


@pytest.mark.parametrize("make", ["directory", "below-a-file", "not-sqlite", "short-garbage"])
def test_unusable_sqlite_paths_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make: str) -> None:
    path = tmp_path / "mailroom.db"
    if make == "directory":
        path.mkdir()
    elif make == "below-a-file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "sub" / "mailroom.db"
    elif make == "not-sqlite":
        path.write_text("hello\n" * 100)
    else:
        path.write_bytes(b"SQL")

    message = refused(monkeypatch, MAILROOM_DATABASE_URL=f"sqlite:///{path}")

    assert message.startswith("MAILROOM_DATABASE_URL:")


def test_a_new_or_empty_sqlite_file_in_a_new_directory_is_fine(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setenv("MAILROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'a' / 'b' / 'mailroom.db'}")
    assert load_settings().sqlite_path == tmp_path / "a" / "b" / "mailroom.db"
    assert not (tmp_path / "a").exists()  # checked, not created

    (tmp_path / "empty.db").write_bytes(b"")
    monkeypatch.setenv("MAILROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    assert load_settings().sqlite_path == tmp_path / "empty.db"


def test_the_default_database_is_checked_in_the_working_directory(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "mailroom.db").mkdir()

    assert refused(monkeypatch).startswith("MAILROOM_DATABASE_URL:")


@pytest.mark.parametrize("content", ["", "short\n"])
def test_a_key_file_without_a_key_is_named_as_the_secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             content: str) -> None:
    (tmp_path / "m.db.key").write_text(content)

    message = refused(monkeypatch, MAILROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}")

    assert message.startswith("MAILROOM_SECRET_KEY:")
    monkeypatch.setenv("MAILROOM_SECRET_KEY", SECRET)  # a key given outright makes the file irrelevant
    assert load_settings().secret_key is not None


@pytest.mark.parametrize(("variable", "value"), [
    ("MAILROOM_SEAL_EVERY", "-1"),
    ("MAILROOM_SEAL_EVERY", "1e3x"),
    ("MAILROOM_ALLOW_PRIVATE_HOSTS", "perhaps"),
    ("MAILROOM_POLL_SECONDS", "inf"),
    ("MAILROOM_DNS_SERVERS", "9.9.9.9:0"),
    ("MAILROOM_DATABASE_URL", "postgresql://host-only"),
    ("MAILROOM_DATABASE_URL", "postgres://u@h:notaport/db"),
])
def test_malformed_values_name_their_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    assert refused(monkeypatch, **{variable: value}).startswith(f"{variable}:")


def test_contract_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert (settings.allow_private_hosts, settings.seal_every) == (False, 10_000)
    monkeypatch.setenv("MAILROOM_ALLOW_PRIVATE_HOSTS", "1")
    monkeypatch.setenv("MAILROOM_SEAL_EVERY", "0")
    assert (load_settings().allow_private_hosts, load_settings().seal_every) == (True, 0)
