"""`python manage.py doctor_script > hokusai_doctor.py`: exactly the bytes the portal serves for download.

`--sha256` prints the digest the download page shows instead."""

import sys

from django.core.management.base import BaseCommand

from onboarding.environment import doctor_script


class Command(BaseCommand):
    help = "Print the environment doctor script exactly as the portal serves it (or its sha256 with --sha256)."

    def add_arguments(self, parser):
        parser.add_argument("--sha256", action="store_true", help="print the script's sha256 instead")

    def handle(self, *args, **options):
        script = doctor_script()
        if options["sha256"]:
            self.stdout.write(f"{script.sha256}  {script.filename}")
            return
        sys.stdout.buffer.write(script.content)  # bytes, untouched: no newline added, no encoding step
        sys.stdout.buffer.flush()
