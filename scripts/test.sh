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

echo "== ruff"; ruff check .
echo "== mypy"; mypy domain projections adapters api
echo "== pytest"; python -m pytest -q -p no:cacheprovider "$@"
