#!/usr/bin/env bash
# The whole test suite: venv, install, PostgreSQL and Dovecot up, lint, types, pytest.
source "$(dirname "$0")/_venv.sh" "[dev]"

need_root_install() {
    if [ "$(id -u)" = 0 ]; then
        [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null; APT_UPDATED=1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "test.sh: please install: $*" >&2
    fi
}

# Dovecot: the real IMAP/POP3 server the tests start privately.
command -v dovecot >/dev/null || need_root_install dovecot-imapd dovecot-pop3d

# PostgreSQL on 127.0.0.1:5432 (started if installed but down).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    command -v pg_ctlcluster >/dev/null || need_root_install postgresql
    if command -v pg_ctlcluster >/dev/null; then
        version="$(ls /etc/postgresql | sort -V | tail -1)"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
fi

# Web front end (web/): npm ci from the lock file, codegen + type check, ESLint, and the build into a
# temporary directory that tests/unit/test_web_bundle.py compares with the committed api/static/.
# Chromium (Debian's) for the browser tests; Playwright never downloads a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
[ -x /usr/bin/chromium ] || need_root_install chromium
if command -v npm >/dev/null; then
    echo "== web"
    web_build="$(mktemp -d)"
    trap 'rm -rf "$web_build"' EXIT
    # npm ci from the lock file, once per lock file (a stamp, like _venv.sh's pip install).
    lock_sum="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
    if [ "$(cat web/node_modules/.mailroom-lock 2>/dev/null)" != "$lock_sum" ]; then
        (cd web && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
        echo "$lock_sum" > web/node_modules/.mailroom-lock
    fi
    # Codegen, type check, lint and build are skipped when every input they read (web/ but its
    # node_modules and generated src/gql, the contract, the lock file's install, node's version)
    # is byte for byte one that passed before: the build it made then is reused.
    web_key="$( { find web -path web/node_modules -prune -o -path web/src/gql -prune -o -type f -print \
                  | LC_ALL=C sort | xargs sha256sum; sha256sum api/contract.graphql; node --version; \
                  cat web/node_modules/.mailroom-lock; } | sha256sum | cut -d' ' -f1)"
    web_cache="${XDG_CACHE_HOME:-$HOME/.cache}/mailroom/web/$web_key"
    if [ -f "$web_cache/passed" ]; then
        cp -R "$web_cache/static" "$web_build/static"
        echo "(web unchanged since a passing check: its build reused)"
    else
        (cd web && npm run --silent codegen && npx tsc --noEmit && npx eslint . \
            && npx vite build --logLevel error --outDir "$web_build/static" --emptyOutDir)
        rm -rf "$web_cache" && mkdir -p "$web_cache" && cp -R "$web_build/static" "$web_cache/static" \
            && touch "$web_cache/passed" || true
        ls -dt "$(dirname "$web_cache")"/*/ 2>/dev/null | tail -n +6 | xargs -r rm -rf  # the last five kept
    fi
    export MAILROOM_WEB_BUILD="$web_build/static"
else
    echo "test.sh: npm is missing: the web front end is not checked" >&2
fi

echo "== ruff"; ruff check .
echo "== mypy"; mypy domain projections adapters api
echo "== pytest"; python -m pytest -q -p no:cacheprovider "$@"
