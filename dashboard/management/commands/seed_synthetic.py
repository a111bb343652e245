"""`python manage.py seed_synthetic --investigations N`: realistic synthetic data for load and benchmarks.

N investigations over the past year with findings, action items and timeline events; N/10 developers
with their onboarding milestones; 10 x N check runs with their steps. Bulk inserts in batches; the same
--seed gives the same data."""

import random
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from onboarding.models import CheckRun, CheckStep, DeveloperProgress
from triage import stats
from triage.models import OPEN_STATUSES, ActionItem, Component, Finding, Investigation, TimelineEvent

BATCH = 5000
CAUSES = [
    "WRITE_PERMISSION_DENIED",
    "AUTH_KEY_REJECTED",
    "REGISTRY_ADMIN_REQUIRED",
    "CONNECT_TIMEOUT",
    "RUN_NOT_FOUND",
    "METRIC_NOT_FOUND",
    "AUTH_SCHEME_MISMATCH",
    "REGISTRY_UNAVAILABLE",
]
STEP_FOR_CAUSE = {
    "WRITE_PERMISSION_DENIED": "write",
    "AUTH_KEY_REJECTED": "auth",
    "REGISTRY_ADMIN_REQUIRED": "auth",
    "CONNECT_TIMEOUT": "tcp",
    "RUN_NOT_FOUND": "run",
    "METRIC_NOT_FOUND": "metric",
    "AUTH_SCHEME_MISMATCH": "auth",
    "REGISTRY_UNAVAILABLE": "health",
}
WORDS = [
    "registry",
    "403",
    "token",
    "MLflow",
    "SDK",
    "timeout",
    "docs",
    "gateway",
    "upload",
    "artifact",
    "tags",
    "login",
]


class Command(BaseCommand):
    help = "Fill the database with synthetic investigations, developers and check runs (for benchmarks)."

    def add_arguments(self, parser):
        parser.add_argument("--investigations", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, investigations: int, seed: int, **options):
        rng = random.Random(seed)
        started = time.monotonic()
        now = timezone.now()
        year = timedelta(days=365)
        User = get_user_model()
        password = make_password("synthetic-password-1")
        tag = f"syn{seed}-{int(now.timestamp())}"
        with transaction.atomic():
            support = User.objects.bulk_create(
                [User(username=f"{tag}-support{i}", password=password) for i in range(10)]
            )
            Group.objects.get(name="Support engineers").user_set.add(*support)
            developers = User.objects.bulk_create(
                [
                    User(username=f"{tag}-dev{i}", password=password, date_joined=now - rng.random() * year)
                    for i in range(max(1, investigations // 10))
                ],
                batch_size=BATCH,
            )
            Group.objects.get(name="Developers").user_set.add(*developers)
        progress = []
        for dev in developers:
            joined = dev.date_joined
            key = joined + timedelta(hours=rng.random() * 48) if rng.random() < 0.8 else None
            connectivity = key + timedelta(hours=rng.random() * 24) if key and rng.random() < 0.6 else None
            registered = (
                connectivity + timedelta(hours=rng.random() * 72) if connectivity and rng.random() < 0.7 else None
            )
            progress.append(
                DeveloperProgress(
                    user=dev,
                    signed_up_at=joined,
                    key_saved_at=key,
                    connectivity_passed_at=connectivity,
                    registered_at=registered,
                )
            )
        DeveloperProgress.objects.bulk_create(progress, batch_size=BATCH)
        self.stdout.write(
            f"users: {len(support)} support, {len(developers)} developers ({time.monotonic() - started:.0f}s)"
        )

        components = list(Component.objects.all())
        severities = ["critical", "high", "medium", "low"]
        open_statuses = list(OPEN_STATUSES)
        for offset in range(0, investigations, BATCH):
            size = min(BATCH, investigations - offset)
            rows = []
            for _ in range(size):
                created = now - rng.random() * year
                resolved = rng.random() < 0.6
                resolved_at = min(now, created + timedelta(days=rng.expovariate(1 / 6))) if resolved else None
                rows.append(
                    Investigation(
                        title=f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} problem #{offset}",
                        summary="Synthetic investigation for load testing.",
                        severity=rng.choices(severities, weights=[1, 3, 5, 3])[0],
                        status=rng.choice(["resolved", "closed"]) if resolved else rng.choice(open_statuses),
                        resolution=rng.choice(["fixed", "false_positive", "cannot_reproduce"]) if resolved else "",
                        owner=rng.choice(support),
                        next_review=(now + timedelta(days=rng.randint(-10, 20))).date(),
                        created_at=created,
                        resolved_at=resolved_at,
                    )
                )
            with transaction.atomic():
                created_rows = Investigation.objects.bulk_create(rows)
                Investigation.components.through.objects.bulk_create(
                    [
                        Investigation.components.through(investigation_id=i.pk, component_id=rng.choice(components).pk)
                        for i in created_rows
                    ]
                )
                Finding.objects.bulk_create(
                    [
                        Finding(
                            investigation=i, position=p, title=f"Finding {p}", status=rng.choice(Finding.Status.values)
                        )
                        for i in created_rows
                        for p in range(1, 4)
                    ],
                    batch_size=BATCH,
                )
                ActionItem.objects.bulk_create(
                    [
                        ActionItem(
                            investigation=i,
                            position=p,
                            phase=f"Phase {p}",
                            title=f"Action {p}",
                            done=rng.random() < 0.5,
                        )
                        for i in created_rows
                        for p in range(1, 5)
                    ],
                    batch_size=BATCH,
                )
                TimelineEvent.objects.bulk_create(
                    [
                        TimelineEvent(
                            investigation=i,
                            kind=TimelineEvent.Kind.STATUS,
                            old=Investigation.Status.NEW,
                            new=i.status,
                        )
                        for i in created_rows
                        for _ in range(3)
                    ],
                    batch_size=BATCH,
                )
            self.stdout.write(f"investigations: {offset + size}/{investigations} ({time.monotonic() - started:.0f}s)")
        rows = stats.rebuild()  # bulk_create bypasses the signals that keep the dashboard's counts
        self.stdout.write(f"investigation stats: {rows} day rows ({time.monotonic() - started:.0f}s)")

        runs_total = 10 * investigations
        for offset in range(0, runs_total, BATCH):
            size = min(BATCH, runs_total - offset)
            runs = []
            for _ in range(size):
                created = now - rng.random() * year
                failed = rng.random() < 0.45
                cause = rng.choice(CAUSES) if failed else "OK"
                runs.append(
                    CheckRun(
                        user=rng.choice(developers),
                        kind="connectivity" if STEP_FOR_CAUSE.get(cause) not in ("run", "metric") else "registration",
                        status="failed" if failed else "passed",
                        cause=cause,
                        registry_url="https://registry.example",
                        key_masked="hk_test_Syn0…00",
                        created_at=created,
                        started_at=created,
                        finished_at=created + timedelta(seconds=1),
                        deadline_at=created + timedelta(seconds=45),
                    )
                )
            with transaction.atomic():
                created_runs = CheckRun.objects.bulk_create(runs)
                steps = []
                for run in created_runs:
                    steps.append(
                        CheckStep(
                            run=run,
                            position=1,
                            name="key_format",
                            title="Key format",
                            status="pass",
                            cause="OK",
                            message="ok",
                            duration_ms=0,
                        )
                    )
                    last = STEP_FOR_CAUSE.get(run.cause, "write")
                    steps.append(
                        CheckStep(
                            run=run,
                            position=2,
                            name=last,
                            title=last,
                            status="fail" if run.cause != "OK" else "pass",
                            cause=run.cause,
                            message="synthetic",
                            duration_ms=rng.randint(5, 400),
                        )
                    )
                CheckStep.objects.bulk_create(steps, batch_size=BATCH)
            if (offset // BATCH) % 20 == 0:
                self.stdout.write(f"check runs: {offset + size}/{runs_total} ({time.monotonic() - started:.0f}s)")
        if connection.vendor == "postgresql":
            # Planner statistics and the visibility map (index-only scans) for what was just loaded: with
            # autovacuum off (as on this machine) or not yet run, every page was 2–3× slower until then.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            self.stdout.write(f"vacuumed and analyzed ({time.monotonic() - started:.0f}s)")
        self.stdout.write(self.style.SUCCESS(f"done in {time.monotonic() - started:.0f}s"))
