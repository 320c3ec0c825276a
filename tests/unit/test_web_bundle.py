"""The web bundle shipped in the package (api/static/, committed so that a fresh clone serves the
UI without Node) must be what web/ builds today: rebuilt here (or taken from the build
scripts/test.sh just made, MAILROOM_WEB_BUILD) and compared file by file (SHA-256). The build is
deterministic: content-hashed names, no timestamps, no absolute paths."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.backends import unavailable

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
STATIC = ROOT / "api" / "static"


def digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def npm(*args: str) -> None:
    done = subprocess.run(["npm", *args], cwd=WEB, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"npm {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def build(out: Path) -> Path:
    if shutil.which("npm") is None:
        unavailable("npm is not installed: cannot rebuild the web bundle")  # fails under CI=true
    if not (WEB / "node_modules").is_dir():
        npm("ci", "--no-audit", "--no-fund")
    npm("run", "build", "--", "--outDir", str(out), "--emptyOutDir")
    return out


@pytest.mark.timeout(900)
def test_the_committed_bundle_is_what_web_builds(tmp_path: Path) -> None:
    given = os.environ.get("MAILROOM_WEB_BUILD")
    built = Path(given) if given else build(tmp_path / "static")
    committed, fresh = digests(STATIC), digests(built)
    assert "index.html" in fresh and "graphiql.html" in fresh
    changed = {p for p in committed.keys() & fresh.keys() if committed[p] != fresh[p]}
    stale = sorted(set(committed) ^ set(fresh) | changed)
    assert not stale, ("api/static is stale: rebuild it (cd web && npm run build) and commit it; differing files: "
                       + ", ".join(stale))


def test_the_pages_load_nothing_inline() -> None:
    for page in ("index.html", "graphiql.html"):
        html = (STATIC / page).read_text()
        assert "<script>" not in html and "<style" not in html and " style=" not in html, page
        assert "://" not in html, f"{page} refers to another origin"
