#!/usr/bin/env bash
# Serves mailroom on 127.0.0.1:8000 with the embedded SQLite default (./mailroom.db).
source "$(dirname "$0")/_venv.sh" ""
exec mailroom serve "$@"
