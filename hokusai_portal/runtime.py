"""What a process needs on disk before Django starts: the var/ folder and its parts, and the development
secrets. Settings only read (importing them changes nothing); every entry point calls prepare() first:
manage.py, wsgi, asgi, the Celery app, the tests (tests/prepare.py, a pytest plugin loaded before pytest-django) and the scripts
under bench/ and docs/."""

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """Runtime state (SQLite file, broker folders, development secrets, mail) lives here."""
    return Path(os.getenv("PORTAL_VAR_DIR", BASE_DIR / "var")).resolve()


def _dev_secret_path(folder: Path, name: str) -> Path:
    return folder / f"dev-{name.lower().replace('_', '-')}"


def _generate(name: str) -> str:
    if name == "FIELD_ENCRYPTION_KEYS":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(50)


def dev_secret(folder: Path, name: str) -> str:
    """The development secret for `name`, generated once per var/ folder (restarts keep sessions and
    ciphertexts valid). Concurrent first starts agree: the first file linked into place wins."""
    path = _dev_secret_path(folder, name)
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(_generate(name))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def prepare() -> None:
    """Make var/ and what lives in it: the filesystem broker's folders, the static root and the mail folder.
    Idempotent; safe in concurrent processes."""
    folder = var_dir()
    for sub in ("", "staticfiles", "mail"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    broker = Path(os.getenv("PORTAL_BROKER_DIR", str(folder / "broker")))
    for sub in ("in", "processed", "control"):
        (broker / sub).mkdir(parents=True, exist_ok=True)
