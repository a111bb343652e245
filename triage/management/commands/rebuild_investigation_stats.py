"""`python manage.py rebuild_investigation_stats`: recompute the dashboard's pre-aggregated counts from
the investigations, findings and components (after bulk writes that bypass the signals)."""

import time

from django.core.management.base import BaseCommand
from django.db.models import Count

from triage import stats
from triage.models import InvestigationStat


class Command(BaseCommand):
    help = "Recompute the pre-aggregated investigation counts the dashboard reads."

    def handle(self, *args, **options):
        started = time.monotonic()
        stats.rebuild()
        counts = dict(InvestigationStat.objects.values_list("kind").annotate(n=Count("id")).order_by())
        self.stdout.write(
            self.style.SUCCESS(
                f"{sum(counts.values())} rows ({counts.get('day', 0)} day, {counts.get('month', 0)} month, "
                f"{counts.get('all', 0)} all-time) in {time.monotonic() - started:.1f}s"
            )
        )
