"""The composition root: settings in, a wired mailroom out. Infrastructure is chosen
by the environment only (MAILROOM_DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters import mailserver
from adapters.blobs import BlobStore
from adapters.database import Database
from adapters.event_index import StoredEventIndex
from adapters.keyring import Keyring
from adapters.locks import MailboxLocks, PostgresLocks, SqliteLocks
from adapters.recorders import POSTGRES_TOPIC, SQLITE_TOPIC
from adapters.schema_lock import schema_lock
from adapters.sealing import SEALING_MAPPER_TOPIC, SealingMapper
from adapters.secrets import EncryptedSecretStore, key_file_secret
from adapters.settings import Settings, SettingsError, parse_database_url
from adapters.sidebar_http import SidebarFetcher
from adapters.snapshots import FollowerSnapshots
from adapters.syncstate import SyncState
from adapters.token_usage import TokenUsage
from api.processes.assigner import AssignerProcess
from api.processes.outbox import OutboxSender
from api.services import Services
from api.sidebar import SidebarResolver
from domain.application import Mailroom
from domain.ports import Discoverer, LoginRefused, LoginVerifier
from domain.values import MailProtocol, ServerSettings
from projections.chain import AuditChain
from projections.conversation_queries import ConversationQueries
from projections.conversations import Conversations as ConversationsView
from projections.counts import Counts
from projections.directory import Directory as DirectoryView
from projections.driver import Projections
from projections.follower import Follower
from projections.queries import Directory
from projections.search import Search
from projections.sidebar import Sidebar
from projections.sidebar_queries import SidebarQueries
from projections.workload import Workload


def real_login(settings: Settings) -> LoginVerifier:
    verify = mailserver.make_verifier(settings.extra_ca_file)

    def login(protocol: MailProtocol, server: ServerSettings, password: str) -> None:
        try:
            verify(protocol, server, password)
        except mailserver.LoginFailed as failed:
            raise LoginRefused(failed.code, failed.message) from None

    return login


def real_discovery(settings: Settings) -> Discoverer:
    from adapters.discovery.discoverer import SettingsDiscovery  # network libraries, loaded when wired

    return SettingsDiscovery(settings.dns_servers, settings.allow_private_hosts, settings.extra_ca_file)


def bootstrap(settings: Settings, verify_login: LoginVerifier | None = None,
              discover: Discoverer | None = None) -> Services:
    env = parse_database_url(settings.database_url)
    if settings.secret_key is None and "SQLITE_DBNAME" not in env:  # before any table is created
        raise SettingsError("MAILROOM_SECRET_KEY: required with a PostgreSQL database")
    # Recorders that commit a follower's position with its events (adapters/recorders.py).
    env["APPLICATION_RECORDER_TOPIC"] = SQLITE_TOPIC if "SQLITE_DBNAME" in env else POSTGRES_TOPIC
    env["MAPPER_TOPIC"] = SEALING_MAPPER_TOPIC  # customers' personal data sealed under their keys
    if "SQLITE_DBNAME" in env:
        Path(env["SQLITE_DBNAME"]).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    with schema_lock(env):  # tables are created by one starting process at a time
        return _wired(settings, env, verify_login, discover)


def _wired(settings: Settings, env: dict[str, str], verify_login: LoginVerifier | None,
           discover: Discoverer | None) -> Services:
    app = Mailroom(env)
    datastore: Any = app.factory.datastore  # type: ignore[attr-defined]
    database = Database(datastore)
    if settings.secret_key is not None:
        secret = settings.secret_key.get_secret_value()
    else:
        secret = key_file_secret(env["SQLITE_DBNAME"])
    directory = Directory(database)
    app.secrets = EncryptedSecretStore(database, secret)
    keyring = Keyring(database, secret)
    keyring.create_tables()
    mapper = app.mapper
    assert isinstance(mapper, SealingMapper)
    mapper.use(keyring)
    app.recorder.keyring = keyring  # type: ignore[attr-defined]  # stores keys and owners with the events
    app.verify_login = verify_login or real_login(settings)
    # Tests that fake the login fake discovery too (None: address and password alone is refused).
    app.discover = discover if discover is not None or verify_login is not None else real_discovery(settings)
    app.references = directory
    app.event_index = StoredEventIndex(database, app.recorder.events_table_name)  # type: ignore[attr-defined]
    app.admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    projections = Projections(app, database, [DirectoryView(), ConversationsView(), Workload(settings.timezone),
                                                Counts(), Sidebar(), Search()])
    projections.create_tables()
    locks: MailboxLocks = PostgresLocks(database.connect) if database.is_postgres else SqliteLocks(database)
    snapshots = FollowerSnapshots(database)
    snapshots.create_table()
    TokenUsage.create_table(database)
    process = AssignerProcess(app, database, ZoneInfo(settings.timezone), snapshots)
    process.ensure_position_row()
    assigner = Follower(process, lambda after, limit: projections.read(after, limit), projections.head,
                        lease=lambda: locks.try_acquire(process.name))
    blobs = BlobStore(database)
    sender = OutboxSender(app, database, blobs, settings.extra_ca_file)
    sender.create_tables()
    outbox = Follower(sender, sender.read, projections.head, lease=lambda: locks.try_acquire(sender.name))
    audit_chain = AuditChain(app, database, settings.seal_every)  # the tamper-evident log (projections/chain.py)
    audit_chain.create_tables()
    chain = Follower(audit_chain, audit_chain.read, projections.head, lease=lambda: locks.try_acquire(audit_chain.name))
    sidebar_queries = SidebarQueries(database)
    fetcher = SidebarFetcher(allow_private=settings.allow_private_hosts, extra_ca_file=settings.extra_ca_file)
    return Services(settings, app, database, projections, directory, blobs, SyncState(database),
                    locks, ConversationQueries(database), snapshots, assigner, outbox, sidebar_queries,
                    SidebarResolver(sidebar_queries, app.secrets, fetcher), chain, keyring)
