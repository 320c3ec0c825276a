"""Mailbox passwords encrypted at rest (AES-256-GCM), in a table beside the log.

Events hold only the reference. The key comes from MAILROOM_SECRET_KEY (any
string, stretched with HKDF) or, for the embedded SQLite default, a key file
created beside the database on first start.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from adapters.database import Database
from domain.ports import SecretStore


def derive_key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailroom-secrets-v1").derive(
        secret.encode()
    )


def key_file_secret(database_path: str) -> str:
    """The embedded default: a random key in DB.key, readable by the owner only."""
    path = Path(database_path + ".key")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


class EncryptedSecretStore(SecretStore):
    def __init__(self, database: Database, secret: str) -> None:
        self.database = database
        self.aead = AESGCM(derive_key(secret))
        with database.transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS mailroom_secrets (ref TEXT PRIMARY KEY, sealed TEXT NOT NULL)")

    def put(self, plaintext: str) -> UUID:
        ref = uuid4()
        nonce = os.urandom(12)
        sealed = nonce + self.aead.encrypt(nonce, plaintext.encode(), ref.bytes)
        with self.database.transaction() as tx:
            tx.execute(
                "INSERT INTO mailroom_secrets (ref, sealed) VALUES (?, ?)",
                (str(ref), base64.b64encode(sealed).decode()),
            )
        return ref

    def get(self, ref: UUID) -> str:
        rows = self.database.query("SELECT sealed FROM mailroom_secrets WHERE ref = ?", (str(ref),))
        if not rows:
            raise KeyError(f"secret {ref} not found")
        sealed = base64.b64decode(rows[0]["sealed"])
        try:
            return self.aead.decrypt(sealed[:12], sealed[12:], ref.bytes).decode()
        except InvalidTag:
            raise ValueError("secret cannot be decrypted: MAILROOM_SECRET_KEY changed?") from None
