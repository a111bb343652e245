"""`python manage.py rebuild_investigation_stats`: recompute the dashboard's pre-aggregated counts from
the investigations, findings and components (after bulk writes that bypass the signals)."""

import time

from django.core.management.base import BaseCommand

from triage import stats
from triage.models import InvestigationStat


class Command(BaseCommand):
    help = "Recompute the pre-aggregated investigation counts the dashboard reads."

    def handle(self, *args, **options):
        started = time.monotonic()
        days = stats.rebuild()
        total = InvestigationStat.objects.count()
        self.stdout.write(
            self.style.SUCCESS(
                f"{total} rows ({days} day rows, {total - days} month rows) in {time.monotonic() - started:.1f}s"
            )
        )
