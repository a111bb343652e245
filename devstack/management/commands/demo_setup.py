"""Create the demo users, seed the running devstack registry and write var/demo-credentials.json.

Run by `make run` under the supervisor, beside the registry it seeds (the registry starts once).
With --wait it prints the banner only once the portal's /healthz is 200: the web, the database,
the broker, a worker and the registry all answer. Running it again reuses what exists."""

import json
import os
import secrets
import time
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role
from accounts.services import totp_enrol, user_create
from devstack.server import Devstack, DevstackError
from hokusai_portal.redaction import mask_key

DEMO_USERS = {"developer": Role.DEVELOPER, "support": Role.SUPPORT, "manager": Role.MANAGER}
DEMO_KEY_ROLES = ("writer", "reader", "revoked", "admin")


class Command(BaseCommand):
    help = "Create demo users for the three roles, seed the devstack registry, print the credentials."

    def add_arguments(self, parser):
        parser.add_argument("--registry-port", type=int, default=int(os.getenv("REGISTRY_PORT", "5000")))
        parser.add_argument("--portal-port", type=int, default=int(os.getenv("PORTAL_PORT", "8000")))
        parser.add_argument("--wait", action="store_true", help="print the banner once /healthz is 200")
        parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for each part")

    def handle(self, *args, registry_port: int, portal_port: int, wait: bool, timeout: float, **options):
        path = settings.VAR_DIR / "demo-credentials.json"
        previous = json.loads(path.read_text()) if path.exists() else {}
        users = {}
        User = get_user_model()
        for username, role in DEMO_USERS.items():
            password = previous.get("users", {}).get(username, {}).get("password") or secrets.token_urlsafe(12)
            user = User.objects.filter(username=username).first()
            if user is None:
                user_create(username=username, email=f"{username}@example.com", password=password, role=role)
            elif not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            users[username] = {"username": username, "password": password}
            if role in (Role.SUPPORT, Role.MANAGER):  # staff need a second factor: an authenticator app's secret
                users[username]["totp_secret"] = self._totp_secret(
                    User.objects.get(username=username), previous.get("users", {}).get(username, {})
                )

        devstack = Devstack(settings.VAR_DIR / "devstack", port=registry_port)
        started = time.monotonic()
        try:
            devstack.wait_ready(timeout=timeout)
            state = devstack.seed()
        except DevstackError as error:
            raise CommandError(f"The devstack registry is not usable: {error}") from error

        credentials = {
            "portal_url": f"http://127.0.0.1:{portal_port}/",
            "registry_url": devstack.url,
            "users": users,
            "keys": {role: state["keys"][role] for role in DEMO_KEY_ROLES},
        }
        path.write_text(json.dumps(credentials, indent=2))
        path.chmod(0o600)
        if settings.STATUS_PROBE_API_KEY_FILE:  # the status page's probes read the registry with the reader key
            probe_key = Path(settings.STATUS_PROBE_API_KEY_FILE)
            probe_key.write_text(state["keys"]["reader"] + "\n")
            probe_key.chmod(0o600)
        if wait:
            self._wait_for_health(f"http://127.0.0.1:{portal_port}/healthz", timeout)
            self.stdout.write(
                f"Ready in {time.monotonic() - started:.0f} s: web, database, broker, worker and registry answer."
            )
        self.stdout.write(self.style.SUCCESS(f"Hokusai Portal: {credentials['portal_url']}"))
        self.stdout.write(f"Registry (devstack MLflow): {devstack.url}")
        for username, login in users.items():
            self.stdout.write(f"  sign in as {username:<10} password {login['password']}")
        self.stdout.write(
            "  support and manager also ask for an authenticator code: `.venv/bin/python manage.py totp_code support`"
            " prints one (or add their totp_secret from the file below to an authenticator app)"
        )
        # Masked: the terminal's scrollback and the supervisor's log keep what is printed; the keys are in the file.
        for role, key in credentials["keys"].items():
            self.stdout.write(f"  demo API key {role:<8} {mask_key(key)}")
        self.stdout.write(f"(the demo keys whole, the logins and the TOTP secrets: {path})")

    @staticmethod
    def _totp_secret(user, previous: dict) -> str:
        """The demo staff user's TOTP secret: the one already enrolled (kept across runs), or a new one."""
        from allauth.mfa.models import Authenticator

        totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP)
        if previous.get("totp_secret") and totp.exists():
            return previous["totp_secret"]
        totp.delete()
        return totp_enrol(user=user)

    def _wait_for_health(self, url: str, timeout: float) -> None:
        deadline, failing = time.monotonic() + timeout, ["web"]
        while time.monotonic() < deadline:
            try:
                response = requests.get(url, timeout=5)
                if response.status_code == 200:
                    return
                failing = response.json().get("failing", ["web"])
            except (requests.RequestException, ValueError):
                failing = ["web"]
            time.sleep(0.5)
        raise CommandError(f"The portal is not ready after {timeout:.0f} s: {', '.join(failing)} not answering.")
