"""`python manage.py import_investigation FILE [--json]`: a Markdown plan -> a structured investigation."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from triage.markdown_io import MAX_BYTES, PlanError
from triage.services import AlreadyImported, investigation_import


class Command(BaseCommand):
    help = "Import an investigation plan written in Markdown (the LSCOR plan's shape). Nothing is saved on error."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--again", action="store_true", help="import a plan imported before as a new copy")

    def handle(self, *args, file: Path, **options):
        try:
            if file.stat().st_size > MAX_BYTES:
                raise CommandError(f"{file} is over {MAX_BYTES // 1024} KiB; plans that large are not imported.")
            raw = file.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}") from None
        try:
            investigation, redactions, plan = investigation_import(actor=None, raw=raw, again=options["again"])
        except PlanError as error:
            again = " Pass --again to import it as a separate copy." if isinstance(error, AlreadyImported) else ""
            raise CommandError(f"{file}: {error} Nothing was saved.{again}") from None
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "id": investigation.pk,
                        "number": investigation.number,
                        "findings": [{"title": f.title, "status": f.status} for f in investigation.findings.all()],
                        "action_items": investigation.action_items.count(),
                        "redactions": redactions.count,
                        "shortened": plan.shortened,
                        "notes": [note.splitlines()[0] for note in plan.notes],
                    },
                    ensure_ascii=False,
                )
            )
            return
        self.stdout.write(self.style.SUCCESS(f"Imported {investigation.number}: {investigation.title}"))
        for finding in investigation.findings.all():
            self.stdout.write(f"  finding: {finding.title} [{finding.get_status_display()}]")
        self.stdout.write(
            f"  {investigation.action_items.count()} action items; {len(plan.notes)} sections kept as notes"
        )
        if redactions.count:
            self.stdout.write(self.style.WARNING(f"  {redactions.message}"))
        for value in plan.shortened:
            self.stdout.write(self.style.WARNING(f"  shortened to fit: {value}"))
