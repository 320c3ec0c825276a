"""The deployment files (issue 8): docker-compose.yml's shape, the Dockerfile's data directory
and what .dockerignore keeps out of the image. Docker itself is not needed: the files are read
as the tools read them (YAML; .dockerignore's pattern rules)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def replicas(service: dict[str, Any]) -> int:
    return int((service.get("deploy") or {}).get("replicas", 1))


def host_ports(service: dict[str, Any]) -> list[str]:
    """The host side of each published port; "" where Docker picks a free one."""
    found = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):  # long syntax
            found.append(str(entry.get("published") or ""))
            continue
        parts = str(entry).rsplit("/", 1)[0].split(":")
        found.append(parts[-2] if len(parts) >= 2 else "")
    return found


# ------------------------------------------------------------------------ docker-compose.yml


def test_api_and_workers_are_scaled_out(compose: dict[str, Any]) -> None:
    api, worker = services(compose)["api"], services(compose)["worker"]

    assert replicas(api) >= 2 and replicas(worker) >= 2
    assert "--no-workers" in api["command"] and "0.0.0.0" in api["command"]
    assert list(worker["command"])[-1] == "worker"


def test_no_two_containers_bind_the_same_host_port(compose: dict[str, Any]) -> None:
    bound: Counter[str] = Counter()
    for name, service in services(compose).items():
        for port in host_ports(service):
            if not port:
                continue
            assert "-" not in port, f"{name}: port ranges with replicas are unreliable in Compose v2"
            assert replicas(service) == 1, f"{name}: {replicas(service)} replicas cannot all bind host port {port}"
            bound[port] += 1
    assert bound, "something must be reachable from the host"
    assert [port for port, n in bound.items() if n > 1] == []


def test_the_published_port_reaches_the_api_replicas(compose: dict[str, Any]) -> None:
    api = services(compose)["api"]
    assert "8000" in [str(p) for p in api.get("expose") or []]
    published = {name for name, s in services(compose).items() if "8000" in host_ports(s)}
    assert published == {"proxy"}
    proxy = services(compose)["proxy"]
    config_mount = next(v for v in proxy["volumes"] if "nginx" in v)
    config = (ROOT / config_mount.split(":")[0]).read_text()
    assert re.search(r"listen\s+8000;", config)
    assert "http://api:8000" in config and "resolver 127.0.0.11" in config
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"


def test_api_and_workers_get_the_database_and_the_secret_key(compose: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        env = services(compose)[name]["environment"]
        assert env["MAILROOM_DATABASE_URL"].startswith(("postgresql://", "postgres://")), name
        assert "MAILROOM_SECRET_KEY" in env, name
        assert ":?" in env["MAILROOM_SECRET_KEY"], f"{name}: compose must refuse to start without a key"


def substitute(value: str, given: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} interpolation."""
    def one(match: re.Match[str]) -> str:
        name, how, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in given:
            return given[name]
        assert how != ":?", f"{name} is required"
        return rest if how == ":-" else ""
    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value)


def test_the_compose_environment_passes_the_start_up_checks(compose: dict[str, Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("MAILROOM_"):
            monkeypatch.delenv(name)
    for name, value in services(compose)["api"]["environment"].items():
        monkeypatch.setenv(name, substitute(str(value), {"MAILROOM_SECRET_KEY": "compose-secret-key-0123456789"}))

    settings = load_settings()

    assert settings.is_postgres and settings.secret_key is not None


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and "NONE" not in test, name
        if test[:3] == ["CMD", "python", "-c"]:
            compile(test[3], f"{name} healthcheck", "exec")  # the inline check is valid Python
    assert any("/healthz" in part for part in services(compose)["api"]["healthcheck"]["test"])
    assert "MAILROOM_DATABASE_URL" in " ".join(services(compose)["worker"]["healthcheck"]["test"])


# ------------------------------------------------------------------------------ Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [tuple(line.strip().split(None, 1)) for line in text.splitlines()  # type: ignore[misc]
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_runs_unprivileged_with_a_writable_data_directory() -> None:
    instructions = dockerfile()
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    user = users[-1]
    env = " ".join(arg for op, arg in instructions if op == "ENV")
    match = re.search(r"MAILROOM_DATABASE_URL=sqlite:///(/\S+)/[^/\s]+", env)
    assert match, "the image's default database must lie in an absolute data directory"
    data_dir = match.group(1)
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert re.search(rf"chown\s+{re.escape(user)}\s+{re.escape(data_dir)}\b", runs), (user, data_dir, runs)
    assert data_dir in " ".join(arg for op, arg in instructions if op == "VOLUME")
    assert [op for op, _ in instructions].index("USER") > max(
        i for i, (op, _) in enumerate(instructions) if op == "RUN")
    assert any(op == "HEALTHCHECK" and "/healthz" in arg for op, arg in instructions)


# ---------------------------------------------------------------------------- .dockerignore


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's rules: Go filepath.Match per path, plus `**` for any number of directories."""
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1].replace("[!", "[^"), end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignored(path: str) -> bool:
    """Whether the build context leaves `path` out (a matched directory takes its contents along)."""
    verdict = False
    prefixes = ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 2)]
    for pattern in ignore_patterns():
        negate = pattern.startswith("!")
        regex = pattern_regex(pattern.lstrip("!"))
        if any(regex.match(prefix) for prefix in prefixes):
            verdict = not negate
    return verdict


@pytest.mark.parametrize("path", [
    "mailroom.db.key", "mailroom.db", "mailroom.db-wal", "mailroom.db-journal", "data/other.db",
    "data/other.db.key", ".venv/bin/python", ".venv", ".git/HEAD", ".git", "node_modules/x/index.js",
    "ui/node_modules/x/index.js", ".env", "api/__pycache__/main.cpython-311.pyc", "tests/data/corpus",
])
def test_dockerignore_keeps_secrets_and_local_state_out(path: str) -> None:
    assert ignored(path), path


@pytest.mark.parametrize("path", [
    "pyproject.toml", "README.md", "api/main.py", "api/contract.graphql", "domain/routing.py",
    "adapters/settings.py", "projections/driver.py", "api/graphql/schema.py",
])
def test_dockerignore_keeps_what_pip_install_needs(path: str) -> None:
    assert (ROOT / path).exists(), path
    assert not ignored(path), path
