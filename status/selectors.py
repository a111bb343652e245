"""What the status page says: each component's state now, 90 daily uptime bars, incidents, maintenance.

State from a component's last counted results (newest first, within STATE_WINDOW):
- set by hand (manual_state): that; in a maintenance window: under maintenance;
- the newest 3 all failed: major outage; 2 or more of the newest 5 failed: partial outage;
- 1 of the newest 5 failed, or their median latency over SLOW_MS: degraded performance;
- otherwise operational. No result in the window: the portal's own workers and broker are a major outage
  (the probe round did not run, which is theirs to run); a registry-side component is shown operational,
  marked "no recent probe result", or "not monitored" when there is no STATUS_PROBE_API_KEY.
Uptime = successes / total of the daily rollups (muted results are not counted)."""

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Prefetch, Q
from django.utils import timezone

from triage.models import Investigation, Severity, TimelineEvent

from .models import ComponentState, Maintenance, PlatformComponent, ProbeResult, Rollup
from .probes import muted_component_ids, service_key, utc_day_start

STATE_WINDOW = timedelta(minutes=15)
SLOW_MS = 5000
BAR_DAYS = 90
STATE_ORDER = [s.value for s in ComponentState]  # best first
INDICATOR = {  # Statuspage's page indicator for the worst component state
    ComponentState.OPERATIONAL: ("none", "All Systems Operational"),
    ComponentState.UNDER_MAINTENANCE: ("maintenance", "Service Under Maintenance"),
    ComponentState.DEGRADED: ("minor", "Minor Service Outage"),
    ComponentState.PARTIAL_OUTAGE: ("major", "Partial System Outage"),
    ComponentState.MAJOR_OUTAGE: ("critical", "Major Service Outage"),
}
INCIDENT_STATUS = {  # investigation status -> Statuspage incident status
    "new": "investigating",
    "investigating": "investigating",
    "root_cause_identified": "identified",
    "fixing": "identified",
    "monitoring": "monitoring",
    "resolved": "resolved",
    "closed": "resolved",
}
IMPACT = {Severity.CRITICAL: "critical", Severity.HIGH: "major", Severity.MEDIUM: "minor", Severity.LOW: "none"}
PORTAL_PROBES = {"workers", "broker"}


@dataclass
class ComponentStatus:
    component: PlatformComponent
    state: str
    reason: str
    monitored: bool = True
    stale: bool = False
    checked_at: datetime | None = None
    uptime: float | None = None  # percent over the bars, None without data
    bars: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ComponentState(self.state).label


def state_from(results: list[ProbeResult]) -> tuple[str, str]:
    """(state, reason) from a component's counted results, newest first."""
    newest = results[:5]
    failed = [r for r in newest if not r.ok]
    if len(results) >= 3 and all(not r.ok for r in results[:3]):
        return ComponentState.MAJOR_OUTAGE, f"The last 3 probes failed ({results[0].cause})."
    if len(failed) >= 2:
        return (
            ComponentState.PARTIAL_OUTAGE,
            f"{len(failed)} of the last {len(newest)} probes failed ({failed[0].cause}).",
        )
    if failed:
        return ComponentState.DEGRADED, f"1 of the last {len(newest)} probes failed ({failed[0].cause})."
    if newest and statistics.median(r.latency_ms for r in newest) > SLOW_MS:
        return ComponentState.DEGRADED, f"Probes take over {SLOW_MS / 1000:.0f} s (median of the last {len(newest)})."
    return ComponentState.OPERATIONAL, "The last probes passed."


def _bars(rollups: list[tuple], today: datetime) -> tuple[list[dict], float | None]:
    by_day = {start: (total, successes) for start, total, successes in rollups}
    bars, total_all, ok_all = [], 0, 0
    for offset in range(BAR_DAYS - 1, -1, -1):
        day = today - timedelta(days=offset)
        total, successes = by_day.get(day, (0, 0))
        total_all, ok_all = total_all + total, ok_all + successes
        uptime = round(100 * successes / total, 2) if total else None
        level = "none" if uptime is None else "ok" if uptime >= 99.9 else "minor" if uptime >= 99 else "major"
        bars.append({"day": day.date(), "uptime": uptime, "total": total, "level": level})
    return bars, (round(100 * ok_all / total_all, 3) if total_all else None)


def component_statuses(now: datetime | None = None) -> list[ComponentStatus]:
    now = now or timezone.now()
    components = list(PlatformComponent.objects.all())
    recent: dict[int, list[ProbeResult]] = {c.pk: [] for c in components}
    for result in ProbeResult.objects.filter(at__gte=now - STATE_WINDOW, at__lte=now, muted=False).order_by(
        "-at", "-id"
    ):
        recent[result.component_id].append(result)
    in_maintenance = muted_component_ids(now)
    today = utc_day_start(now)
    rollups: dict[int, list[tuple]] = {c.pk: [] for c in components}
    for component_id, start, total, successes in Rollup.objects.filter(
        kind=Rollup.Kind.DAY, start__gt=today - timedelta(days=BAR_DAYS), start__lte=today
    ).values_list("component_id", "start", "total", "successes"):
        rollups.setdefault(component_id, []).append((start, total, successes))
    statuses = []
    has_key = bool(service_key())
    for component in components:
        results = recent[component.pk]
        monitored = bool(component.probe) and (component.probe in PORTAL_PROBES or has_key)
        stale = False
        if component.manual_state:
            state, reason = component.manual_state, "Set by the operators."
        elif component.pk in in_maintenance:
            state, reason = ComponentState.UNDER_MAINTENANCE, "Scheduled maintenance is in progress."
        elif results:
            state, reason = state_from(results)
        elif component.probe in PORTAL_PROBES:
            state, reason = (
                ComponentState.MAJOR_OUTAGE,
                f"No probe result in {STATE_WINDOW.seconds // 60} minutes: the probes are not running.",
            )
        else:
            stale = monitored
            state = ComponentState.OPERATIONAL
            reason = (
                f"No probe result in {STATE_WINDOW.seconds // 60} minutes."
                if monitored
                else "Not monitored by a probe."
            )
        bars, uptime = _bars(rollups.get(component.pk, []), today)
        statuses.append(
            ComponentStatus(
                component=component,
                state=state,
                reason=reason,
                monitored=monitored,
                stale=stale,
                checked_at=results[0].at if results else None,
                uptime=uptime,
                bars=bars,
            )
        )
    return statuses


def incidents(now: datetime | None = None, *, recent_days: int = 7):
    """Public investigations linked to components: open ones, and those resolved in the last week."""
    now = now or timezone.now()
    updates = TimelineEvent.objects.filter(internal=False).order_by("-created_at", "-id")
    return (
        Investigation.objects.filter(public_incident=True)
        .filter(Q(status__in=Investigation.OPEN_STATUSES) | Q(resolved_at__gte=now - timedelta(days=recent_days)))
        .prefetch_related("status_components", Prefetch("timeline", queryset=updates, to_attr="public_updates"))
        .order_by("-created_at", "-id")
    )


def maintenances(now: datetime | None = None):
    """Scheduled (next 30 days), in progress, and completed in the last 7 days."""
    now = now or timezone.now()
    return (
        Maintenance.objects.filter(ends_at__gte=now - timedelta(days=7), starts_at__lte=now + timedelta(days=30))
        .prefetch_related("components")
        .order_by("starts_at", "id")
    )


def maintenance_status(maintenance: Maintenance, now: datetime) -> str:
    if now < maintenance.starts_at:
        return "scheduled"
    return "in_progress" if now < maintenance.ends_at else "completed"


def overall(statuses: list[ComponentStatus], open_incidents: list) -> tuple[str, str]:
    worst = max((s.state for s in statuses), key=STATE_ORDER.index, default=ComponentState.OPERATIONAL)
    indicator, description = INDICATOR[ComponentState(worst)]
    impacts = ["none", "minor", "major", "critical"]
    for incident in open_incidents:
        impact = IMPACT.get(incident.severity, "minor")
        if indicator in impacts and impacts.index(impact) > impacts.index(indicator):
            indicator, description = impact, f"{incident.title}"
    return indicator, description


def status_summary(now: datetime | None = None) -> dict:
    """Everything the page, the JSON and the badges show; cached for STATUS_CACHE_SECONDS (the same answer
    for everyone, so a burst of visitors costs one computation)."""
    seconds = settings.STATUS_CACHE_SECONDS if now is None else 0  # a summary "as of" a time is not cached
    return _cached("status:summary", seconds, lambda: _summary(now or timezone.now()))


def _summary(now: datetime) -> dict:
    statuses = component_statuses(now)
    incident_list = list(incidents(now))
    open_incidents = [i for i in incident_list if i.is_open]
    indicator, description = overall(statuses, open_incidents)
    return {
        "now": now,
        "components": statuses,
        "incidents": incident_list,
        "open_incidents": open_incidents,
        "maintenances": [(m, maintenance_status(m, now)) for m in maintenances(now)],
        "indicator": indicator,
        "description": description,
    }


def degraded_for(probes: set[str]) -> list[tuple[ComponentStatus, list[Investigation]]]:
    """Components watched by these probes that are not operational, each with its open public incidents:
    what the onboarding check page warns about. Cached apart from the summary, for as long: every check page
    asks, and the answer is almost always an empty list, cheaper to read back than the whole summary."""
    return _cached(
        "status:degraded:" + ",".join(sorted(probes)), settings.STATUS_CACHE_SECONDS, lambda: _degraded(probes)
    )


def _degraded(probes: set[str]) -> list[tuple[ComponentStatus, list[Investigation]]]:
    summary = status_summary()
    found = []
    for status in summary["components"]:
        if status.component.probe in probes and status.state != ComponentState.OPERATIONAL:
            linked = [i for i in summary["open_incidents"] if status.component in i.status_components.all()]
            found.append((status, linked))
    return found


def _cached(key: str, seconds: int, compute):
    """`compute()`, kept `seconds` in the cache under `key` (0: computed every time)."""
    if not seconds:
        return compute()
    cached = cache.get(key)
    if cached is None:
        cached = compute()
        cache.set(key, cached, seconds)
    return cached
