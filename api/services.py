"""What the API and the processes are given: the wired parts of one mailroom (built by
api/bootstrap.py, the composition root)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.blobs import BlobStore
from adapters.database import Database
from adapters.keyring import Keyring
from adapters.locks import MailboxLocks
from adapters.settings import Settings
from adapters.snapshots import FollowerSnapshots
from adapters.syncstate import SyncState
from api.sidebar import SidebarResolver
from domain.application import Mailroom
from projections.conversation_queries import ConversationQueries
from projections.driver import Projections
from projections.follower import Follower
from projections.queries import Directory
from projections.sidebar_queries import SidebarQueries


@dataclass
class Services:
    settings: Settings
    app: Mailroom
    database: Database
    projections: Projections
    directory: Directory
    blobs: BlobStore
    sync_state: SyncState
    locks: MailboxLocks
    conversations: ConversationQueries
    snapshots: FollowerSnapshots
    assigner: Follower
    outbox: Follower  # the outbox sender (api/processes/outbox.py)
    sidebar_queries: SidebarQueries
    sidebar: SidebarResolver
    chain: Follower  # the audit chain (projections/chain.py)
    keyring: Keyring  # customers' keys (adapters/keyring.py)

    def followers(self) -> list[Follower]:
        """Every log follower: the views, then the processes."""
        return [*self.projections.followers.values(), self.assigner, self.outbox, self.chain]

    def close(self) -> None:
        self.keyring.close()
        self.app.close()
