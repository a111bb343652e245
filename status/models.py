"""Platform status: components, the synthetic probes' results, their hourly and daily rollups, maintenance.

Raw results are kept 14 days (RAW_RETENTION_DAYS); rollups 400 days (ROLLUP_RETENTION_DAYS). Uptime is
successes / total from the rollups; a result taken during maintenance is kept (muted) but not counted."""

from django.db import models


class ComponentState(models.TextChoices):
    """Statuspage's component statuses, worst last (the order is used to pick the page's worst)."""

    OPERATIONAL = "operational", "Operational"
    UNDER_MAINTENANCE = "under_maintenance", "Under maintenance"
    DEGRADED = "degraded_performance", "Degraded performance"
    PARTIAL_OUTAGE = "partial_outage", "Partial outage"
    MAJOR_OUTAGE = "major_outage", "Major outage"


class PlatformComponent(models.Model):
    """A part of the platform a developer depends on, with the probe that watches it."""

    class Probe(models.TextChoices):
        GATEWAY = "gateway", "API-key gateway: an authenticated call with the service key"
        REGISTRY = "registry", "Registry API: /health and a registered-model search"
        ARTIFACTS = "artifacts", "Artifact store: a listing through the registry's artifact proxy"
        WORKERS = "workers", "Portal workers: a heartbeat in the last few seconds"
        BROKER = "broker", "Portal broker: a message published and read back"
        NONE = "", "None: state set by hand"

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    probe = models.CharField(max_length=12, choices=Probe.choices, blank=True)
    manual_state = models.CharField(
        max_length=24,
        choices=ComponentState.choices,
        blank=True,
        help_text="Set by hand, it overrides what the probes say (empty: the probes decide).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class ProbeResult(models.Model):
    component = models.ForeignKey(PlatformComponent, on_delete=models.CASCADE, related_name="results")
    at = models.DateTimeField()
    ok = models.BooleanField()
    latency_ms = models.PositiveIntegerField(default=0)
    cause = models.CharField(max_length=40, blank=True, help_text="The connectivity engine's cause code.")
    muted = models.BooleanField(default=False, help_text="Taken during maintenance: shown, not counted.")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["component", "-at"], name="probe_result_latest")]

    def __str__(self) -> str:
        return f"{self.component} {'ok' if self.ok else self.cause} at {self.at:%Y-%m-%d %H:%M}"


class Rollup(models.Model):
    """Counts of a component's counted results per hour or per UTC day."""

    class Kind(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"

    component = models.ForeignKey(PlatformComponent, on_delete=models.CASCADE, related_name="rollups")
    kind = models.CharField(max_length=4, choices=Kind.choices)
    start = models.DateTimeField()
    total = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    latency_ms_sum = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["component", "kind", "start"]
        constraints = [models.UniqueConstraint(fields=["component", "kind", "start"], name="one_rollup_per_period")]
        indexes = [models.Index(fields=["kind", "start"], name="rollup_period")]

    def __str__(self) -> str:
        return f"{self.component} {self.kind} {self.start:%Y-%m-%d %H:%M}: {self.successes}/{self.total}"


class Maintenance(models.Model):
    """A scheduled window: the components it names show "under maintenance" and their probes are muted."""

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    starts_at = models.DateTimeField(db_index=True)
    ends_at = models.DateTimeField(db_index=True)
    components = models.ManyToManyField(PlatformComponent, related_name="maintenances")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="maintenance_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M} – {self.ends_at:%H:%M})"
