"""Create the demo users, seed the devstack registry and write var/demo-credentials.json.

Run by `make run`. Running it again reuses the users, keys and run that exist."""

import json
import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.roles import Role
from accounts.services import user_create
from devstack.server import Devstack, DevstackError

DEMO_USERS = {"developer": Role.DEVELOPER, "support": Role.SUPPORT, "manager": Role.MANAGER}
DEMO_KEY_ROLES = ("writer", "reader", "revoked", "admin")


class Command(BaseCommand):
    help = "Create demo users for the three roles, seed the devstack registry, print the credentials."

    def add_arguments(self, parser):
        parser.add_argument("--registry-port", type=int, default=int(os.getenv("REGISTRY_PORT", "5000")))
        parser.add_argument("--portal-port", type=int, default=int(os.getenv("PORTAL_PORT", "8000")))

    def handle(self, *args, registry_port: int, portal_port: int, **options):
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

        devstack = Devstack(settings.VAR_DIR / "devstack", port=registry_port)
        try:
            devstack.wait_ready(timeout=0.5)
            state = devstack.seed()
        except DevstackError:
            self.stdout.write("Starting the devstack registry once to seed it (first run takes ~30 s)...")
            with devstack:
                state = devstack.seed()

        credentials = {
            "portal_url": f"http://127.0.0.1:{portal_port}/",
            "registry_url": devstack.url,
            "users": users,
            "keys": {role: state["keys"][role] for role in DEMO_KEY_ROLES},
        }
        path.write_text(json.dumps(credentials, indent=2))
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Hokusai Portal: {credentials['portal_url']}"))
        self.stdout.write(f"Registry (devstack MLflow): {devstack.url}")
        for username, login in users.items():
            self.stdout.write(f"  sign in as {username:<10} password {login['password']}")
        for role, key in credentials["keys"].items():
            self.stdout.write(f"  demo API key {role:<8} {key}")
        self.stdout.write(f"(also written to {path})")
