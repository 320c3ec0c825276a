"""The `mailroom` command (PROCESS.md): serve, worker, token create/revoke, projections rebuild/verify,
audit seal/verify/export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from uuid import UUID

from adapters.settings import SettingsError, load_settings
from api.bootstrap import bootstrap
from api.services import Services
from domain.errors import Rejected
from domain.values import Role


def _services() -> Services:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise SystemExit(f"mailroom: {exc}") from None
    try:
        return bootstrap(settings)
    except SettingsError as exc:
        raise SystemExit(f"mailroom: {exc}") from None
    except Exception as exc:  # the database or key is unusable: say which variable to look at
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        variable = "MAILROOM_SECRET_KEY" if "secret" in first.lower() else "MAILROOM_DATABASE_URL"
        raise SystemExit(f"mailroom: {variable}: cannot open the database: {first}") from None


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app

    services = _services()
    try:
        uvicorn.run(create_app(services, run_workers=not args.no_workers), host=args.host, port=args.port,
                    log_level="info")
    finally:
        services.close()
    return 0


def worker(_: argparse.Namespace) -> int:
    from api.processes.workers import Workers

    services = _services()
    try:
        Workers(services).run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        services.close()
    return 0


def token_create(args: argparse.Namespace) -> int:
    services = _services()
    try:
        agent_id = UUID(args.agent_id) if args.agent_id else None
        value, written = services.app.create_api_token(args.name, Role(args.role), agent_id)
        services.projections.wait_for(written.position)
    except Rejected as rejected:
        print(f"mailroom: {rejected}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"mailroom: --agent-id: {exc}", file=sys.stderr)
        return 1
    finally:
        services.close()
    print(value)
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    """Its next request gets HTTP 401 (the API checks the event store on every request)."""
    try:
        token_id = UUID(args.id)
    except ValueError as exc:
        print(f"mailroom: ID: {exc}", file=sys.stderr)
        return 1
    services = _services()
    try:
        written = services.app.revoke_api_token(token_id)
        services.projections.wait_for(written.position)
    except Rejected as rejected:
        print(f"mailroom: {rejected}", file=sys.stderr)
        return 1
    finally:
        services.close()
    return 0


def projections_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from projections.rebuild import rebuild, verify

    services = _services()
    views = services.projections.views
    names = [args.name] if getattr(args, "name", None) else list(views)
    unknown = [n for n in names if n not in views]
    if unknown:
        print(f"mailroom: unknown projection {unknown[0]!r}; known: {', '.join(views)}", file=sys.stderr)
        return 2
    failed = False
    try:
        for name in names:
            total = services.projections.head()
            with tqdm(total=total, desc=f"{args.action} {name}", unit="ev", file=sys.stderr) as bar:
                if args.action == "rebuild":
                    position = rebuild(services.projections, views[name], bar.update)
                    bar.write(f"{name}: rebuilt up to event {position}")
                else:
                    differences = verify(services.projections, views[name], bar.update)
                    for line in differences:
                        print(line)
                    failed = failed or bool(differences)
                    bar.write(f"{name}: {len(differences)} difference(s)")
    except Exception as exc:
        print(f"mailroom: {args.action} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        services.close()
    return 1 if failed else 0


def audit_command(args: argparse.Namespace) -> int:
    """seal | verify | export (api/audit.py)."""
    from tqdm import tqdm

    from api import audit

    anchors: list[tuple[int, str]] = []
    try:
        anchors = [audit.parse_digest(d) for d in getattr(args, "digest", None) or []]
    except ValueError as exc:
        print(f"mailroom: --digest: {exc}", file=sys.stderr)
        return 2
    services = _services()
    try:
        if args.action == "seal":
            position, digest = audit.seal(services)
            print(f"{position} {digest}")
            return 0
        total = int(services.app.recorder.max_notification_id() or 0)
        if args.action == "verify":
            with tqdm(total=total, desc="verify", unit="ev", unit_scale=True, file=sys.stderr) as bar:
                report = audit.verify(services, anchors, bar.update)
            for line in report.summary():
                print(line)
            return 0 if report.ok else 1
        out = None if args.out in (None, "-") else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
        try:
            with tqdm(total=max(total - args.after, 0), desc="export", unit="ev", unit_scale=True,
                      file=sys.stderr, disable=out is None) as bar:
                audit.export(services, out or sys.stdout, args.after, bar.update)
        finally:
            if out is not None:
                out.close()
        return 0
    except Exception as exc:
        print(f"mailroom: audit {args.action} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        services.close()


def customer_command(args: argparse.Namespace) -> int:
    """erase EMAIL (api/erasure.py)."""
    from api.erasure import erase_customer
    from domain.errors import Rejected

    services = _services()
    try:
        erased = erase_customer(services, args.email)
    except Rejected as rejected:
        print(f"mailroom: customer erase: {'; '.join(p.message for p in rejected.problems)}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"mailroom: customer erase failed (run it again to finish it): {exc}", file=sys.stderr)
        return 1
    finally:
        services.close()
    print(f"erased as {erased.customer}: {erased.conversations} conversations, {erased.messages} messages, "
          f"{erased.contacts} contacts, {erased.records} records, {erased.blobs} blobs deleted")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mailroom", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="serve the API and, unless --no-workers, the workers")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-workers", action="store_true")
    p.set_defaults(func=serve)

    p = commands.add_parser("worker", help="run the workers alone")
    p.set_defaults(func=worker)

    token = commands.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    p = token.add_parser("create", help="issue a token and print it")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--name", required=True)
    p.add_argument("--agent-id")
    p.set_defaults(func=token_create)
    p = token.add_parser("revoke", help="revoke a token: its next request gets 401")
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=token_revoke)

    views = commands.add_parser("projections", help="read models").add_subparsers(dest="action", required=True)
    p = views.add_parser("rebuild", help="rebuild read models from the event log")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=projections_command)
    p = views.add_parser("verify", help="compare read models with a fresh rebuild; exit 1 on any difference")
    p.set_defaults(func=projections_command)

    customer = commands.add_parser("customer", help="customers").add_subparsers(dest="action", required=True)
    p = customer.add_parser("erase", help="erase a customer (crypto-shredding); safe to run again")
    p.add_argument("email")
    p.set_defaults(func=customer_command)
    audit = commands.add_parser("audit", help="the tamper-evident log").add_subparsers(dest="action", required=True)
    p = audit.add_parser("seal", help="seal the log as it stands; prints POSITION DIGEST")
    p.set_defaults(func=audit_command)
    p = audit.add_parser("verify", help="recompute the hash chain and the decisions; exit 1 on any mismatch")
    p.add_argument("--digest", action="append", metavar="POSITION:HEX", help="a digest kept outside mailroom")
    p.set_defaults(func=audit_command)
    p = audit.add_parser("export", help="the log as JSON lines, with the chain (tools/verify_export.py)")
    p.add_argument("--after", type=int, default=0, metavar="POSITION")
    p.add_argument("--out", metavar="FILE", help="- or absent: stdout")
    p.set_defaults(func=audit_command)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
