"""API keys of the devstack gateway, kept hashed (SHA-256) in a JSON file.

Each key maps to an MLflow user, its scopes, an admin flag and a revoked flag.
Plain keys are never stored here."""

import hashlib
import json
import os
import secrets
import string
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

WRITE_SCOPES = frozenset({"model:write", "mlflow:write", "admin"})
KEY_ALPHABET = string.ascii_letters + string.digits


@dataclass
class KeyRecord:
    username: str
    scopes: list[str] = field(default_factory=list)
    admin: bool = False
    revoked: bool = False
    label: str = ""

    @property
    def can_write(self) -> bool:
        return self.admin or bool(WRITE_SCOPES & set(self.scopes))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_generate(prefix: str = "hk_test_", length: int = 32) -> str:
    return prefix + "".join(secrets.choice(KEY_ALPHABET) for _ in range(length))


class KeyStore:
    """A JSON file of {sha256(key): KeyRecord}; re-read when the file changes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._records: dict[str, KeyRecord] = {}

    def _load(self) -> dict[str, KeyRecord]:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                return {}
            if mtime != self._mtime:
                raw = json.loads(self.path.read_text())
                self._records = {digest: KeyRecord(**record) for digest, record in raw.items()}
                self._mtime = mtime
            return self._records

    def lookup(self, key: str) -> KeyRecord | None:
        return self._load().get(key_hash(key))

    def add(self, key: str, record: KeyRecord) -> None:
        records = dict(self._load())
        records[key_hash(key)] = record
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({d: asdict(r) for d, r in records.items()}, indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.path)
