from django.conf import settings
from django.db import models
from django.utils import timezone

from .diagnosis import StepStatus


class ApiKey(models.Model):
    """A developer's Hokusai API key, encrypted at rest (see hokusai_portal.crypto)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_key")
    ciphertext = models.TextField(help_text="Fernet token; the plain key is never stored.")
    masked = models.CharField(max_length=32, help_text="e.g. hk_live_pIDV…tN, safe to show.")
    key_tier = models.CharField(max_length=8, help_text="live, test or dev: the part after hk_.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.masked} ({self.user})"


class OrganizationApiKey(models.Model):
    """An organization's platform key, saved by its owner, encrypted like a personal key. Members run
    checks with it (when they have no key of their own) without ever seeing it."""

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE, related_name="api_key")
    ciphertext = models.TextField(help_text="Fernet token; the plain key is never stored.")
    masked = models.CharField(max_length=32, help_text="e.g. hk_live_pIDV…tN, safe to show.")
    key_tier = models.CharField(max_length=8, help_text="live, test or dev: the part after hk_.")
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "organization API key"

    def __str__(self) -> str:
        return f"{self.masked} ({self.organization})"


class CheckRun(models.Model):
    """One connectivity (or registration) check: its steps are CheckStep rows, written as they finish."""

    class Kind(models.TextChoices):
        CONNECTIVITY = "connectivity", "Connectivity"
        REGISTRATION = "registration", "Registration"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        LOST = "lost", "Did not finish"  # the sweeper ended it: WORKER_LOST, WORKERS_UNAVAILABLE, DEADLINE_EXCEEDED

    FINISHED = (Status.PASSED, Status.FAILED, Status.LOST)
    UNSUCCESSFUL = (Status.FAILED, Status.LOST)  # what a developer can report, what the dashboard's causes count

    class KeySource(models.TextChoices):
        PERSONAL = "personal", "Personal key"
        ORGANIZATION = "organization", "Organization key"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="check_runs")
    # The organization the developer was in when they ran it: its members read it (a later member too,
    # a former one no longer); it stays with the developer who ran it whatever happens to the organization.
    organization = models.ForeignKey(
        "organizations.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="check_runs"
    )
    key_source = models.CharField(
        max_length=16, choices=KeySource.choices, blank=True, help_text="Whose key the run used (masked in key_masked)."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CONNECTIVITY)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    cause = models.CharField(
        max_length=40, blank=True, help_text="The first failing step's cause code; OK when passed."
    )
    registry_url = models.CharField(
        max_length=300, help_text="From operator settings at submit time, never user input."
    )
    key_masked = models.CharField(max_length=32, blank=True)
    model_name = models.CharField(max_length=256, blank=True)
    enqueue_error = models.CharField(max_length=200, blank=True, help_text="Why the task could not be queued.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(
        help_text="Queued: the end of the queue grace. Running: the check's own deadline from its start."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The lease: refreshed every second by the worker running it."
    )
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker holding the run.")
    attempt = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a worker started it (a second time after a worker died)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["status", "deadline_at"]),
            # the dashboard's failure causes of the last 7 days: an index-only scan of the failed runs
            models.Index(
                fields=["created_at", "cause", "user"],
                condition=models.Q(status__in=["failed", "lost"]),
                name="checkrun_failed_recent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} check #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return round((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class CheckStep(models.Model):
    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=40)
    title = models.CharField(max_length=80)
    status = models.CharField(max_length=8, choices=StepStatus.CHOICES)
    cause = models.CharField(max_length=40)
    message = models.TextField()
    remedy = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    evidence = models.JSONField(default=dict, blank=True, help_text="Redacted: status code, headers, first bytes.")

    class Meta:
        # The newest run's steps first, as before, by the column: "run" would join the run for its own ordering.
        ordering = ["-run_id", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="unique_step_position")]

    def __str__(self) -> str:
        return f"{self.title}: {self.status} {self.cause}"


class Registration(models.Model):
    """A model registration request, its check run (pre-checks, register, verify) and its outcome.

    `idempotency_key` is unique among registrations that did not fail: a double click or a browser
    retry lands on the same registration; a worker killed mid-way is retried onto the same version."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="registrations")
    check_run = models.OneToOneField(CheckRun, on_delete=models.CASCADE, related_name="registration")
    model_uri = models.CharField(max_length=500)
    model_name = models.CharField(max_length=256)
    token_id = models.CharField(max_length=64)
    metric_name = models.CharField(max_length=250)
    baseline_value = models.FloatField()
    proposal_identifier = models.CharField(max_length=250, blank=True)
    extra_tags = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=64)
    failed = models.BooleanField(default=False)
    version = models.CharField(max_length=20, blank=True)
    source = models.CharField(
        max_length=500, blank=True, help_text="What the version was created from (a resolved runs:/ URI)."
    )
    mlflow_run_id = models.CharField(max_length=64, blank=True, help_text="The MLflow run the version came from.")
    model_id = models.CharField(max_length=64, blank=True)
    tags = models.JSONField(default=dict, blank=True, help_text="The version's tags as read back from the registry.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], condition=models.Q(failed=False), name="one_live_registration_per_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_name} ({self.token_id}) by {self.user}"


class DeveloperProgress(models.Model):
    """When a developer first reached each onboarding milestone: pre-aggregated so the managers'
    funnel is a count over users, not a scan of every check run."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="onboarding_progress")
    signed_up_at = models.DateTimeField(db_index=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    key_saved_at = models.DateTimeField(null=True, blank=True)
    connectivity_passed_at = models.DateTimeField(null=True, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "developer progress"

    def __str__(self) -> str:
        return f"{self.user} onboarding"


class WorkerHeartbeat(models.Model):
    """A Celery worker process's last sign of life, written every second by its heartbeat thread.

    /healthz reads it (is any worker alive?), the sweeper reads it (a queued run with no live worker
    ends as WORKERS_UNAVAILABLE). A worker that stops cleanly deletes its row."""

    name = models.CharField(max_length=200, unique=True, help_text="host:pid")
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} (last beat {self.beat_at:%H:%M:%S})"


class EnvironmentReport(models.Model):
    """A report from the environment doctor (`hokusai_doctor.py --json`), pasted or uploaded by a developer:
    validated against the doctor's schema and redacted again before it is saved."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="environment_reports")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    doctor_version = models.CharField(max_length=32)
    ok = models.BooleanField(help_text="No check failed.")
    network = models.BooleanField(default=False, help_text="The doctor probed the registry (--network).")
    facts = models.JSONField(default=dict, blank=True, help_text="Python, SDK, packages, key fingerprint (redacted).")
    key_fingerprint = models.CharField(max_length=8, blank=True, help_text="First 8 hex digits of the key's sha256.")
    key_matches = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether the key on the machine is the one saved in the portal (unknown: no key).",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Environment report #{self.pk} by {self.user} ({'ok' if self.ok else 'failing'})"


class EnvironmentCheck(models.Model):
    """One line of an environment report: a check the doctor ran, with its cause code and remedy."""

    report = models.ForeignKey(EnvironmentReport, on_delete=models.CASCADE, related_name="checks")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=80)
    status = models.CharField(max_length=8)  # pass | warn | fail | skip: the doctor's, not StepStatus
    cause = models.CharField(max_length=64, db_index=True)
    message = models.TextField()
    remedy = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["report", "position"]
        constraints = [models.UniqueConstraint(fields=["report", "position"], name="one_check_per_position")]

    def __str__(self) -> str:
        return f"{self.name}: {self.status} {self.cause}"
