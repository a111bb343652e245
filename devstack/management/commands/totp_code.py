"""Print the current authenticator code of a demo user (development only: devstack is not installed in
production), so whoever runs `make run` can sign in as the staff users, who need a second factor."""

from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Print the current TOTP code of a user who enrolled an authenticator app (e.g. the demo support user)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        totp = Authenticator.objects.filter(user__username=username, type=Authenticator.Type.TOTP).first()
        if totp is None:
            raise CommandError(f"{username!r} has no authenticator app enrolled.")
        secret = get_adapter().decrypt(totp.data["secret"])
        counters = list(yield_hotp_counters_from_time())
        self.stdout.write(format_hotp_value(hotp_value(secret, counters[len(counters) // 2])))
