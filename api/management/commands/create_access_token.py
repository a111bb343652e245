"""`manage.py create_access_token --user U --scopes a,b [--name N] [--days D]`: prints the token alone on
stdout (for operators and tests; pipe it where it goes, it is not shown again)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api import services


class Command(BaseCommand):
    help = "Create an API access token for a user and print it (alone) on stdout."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--scopes", required=True, help="comma-separated, e.g. checks:run,checks:read")
        parser.add_argument("--name", default="command line", help="what uses it")
        parser.add_argument("--days", type=int, default=services.DEFAULT_DAYS, help="1 to 365 (default 90)")

    def handle(self, *args, user, scopes, name, days, **options):
        account = get_user_model().objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"No user named {user!r}.")
        try:
            _, plain = services.access_token_create(user=account, name=name, scopes=scopes.split(","), days=days)
        except services.AccessTokenInvalid as error:
            raise CommandError(str(error)) from None
        self.stdout.write(plain)
