"""`mailroom` commands in processes forked from one that has imported the CLI already.

`cli_token` mints the tokens of nearly every end-to-end module; as a fresh `mailroom` process
each paid the interpreter's start and the imports (most of a second) before its few
milliseconds of work. Here one server process (multiprocessing's forkserver, started once,
single-threaded) imports `api.cli`; each command is a new process forked from it that runs
`api.cli.main` with the given environment and working directory, like the console script, and
hands back its exit code, stdout and stderr. The console script itself stays covered by the
commands `run_mailroom` runs (test_startup_checks.py, test_process_contract.py,
test_token_revocation.py).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

_context: Any = None


def _forkserver() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["api.cli", "tests.e2e.forked_cli"])
    return _context


def _main(env: dict[str, str], args: Sequence[str], cwd: str, answer: Connection) -> None:
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    code = 1
    with tempfile.TemporaryFile() as fds:  # whatever bypasses sys.stdout/stderr (fd 1 and 2)
        os.dup2(fds.fileno(), 1)
        os.dup2(fds.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    from api.cli import main

                    code = int(main(list(args)))
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            fds.seek(0)
            answer.send((code, out.getvalue(), err.getvalue() + fds.read().decode(errors="replace")))
            answer.close()


def run(env: dict[str, str], args: Sequence[str], cwd: str, timeout: float) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `mailroom ARGS` in a forked process."""
    context = _forkserver()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_main, args=(env, list(args), cwd, send), daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise TimeoutError(f"mailroom {' '.join(args)} did not finish within {timeout}s")
        code, stdout, stderr = receive.recv()
    finally:
        receive.close()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
    return int(code), str(stdout), str(stderr)
