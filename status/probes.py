"""The synthetic probes: what each component's probe does, results saved, rollups kept current, retention.

Registry-side components reuse the connectivity engine (its steps up to the registry read: no write, so
a probe every 60 s leaves nothing behind) with the operator's service key (STATUS_PROBE_API_KEY, from the
environment, never shown). Portal-side components reuse /healthz's probes (worker heartbeat, broker
round trip). A result taken during maintenance of its component is saved as muted and not counted."""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from onboarding import health, lifecycle
from onboarding.checks import ConnectivityCheck
from onboarding.diagnosis import StepStatus

from .models import Maintenance, PlatformComponent, ProbeResult, Rollup

logger = logging.getLogger(__name__)

RAW_RETENTION_DAYS = 14
ROLLUP_RETENTION_DAYS = 400
PROBE_DEADLINE_SECONDS = 15


@dataclass(frozen=True)
class Outcome:
    ok: bool
    latency_ms: int
    cause: str = "OK"


class StatusProbe(ConnectivityCheck):
    """The connectivity check without its write step."""

    def step_names(self) -> list[str]:
        return [name for name in super().step_names() if name != "write"]


def service_key() -> str:
    """STATUS_PROBE_API_KEY, or the first line of STATUS_PROBE_API_KEY_FILE (in development, `make run`'s
    demo_setup writes the local registry's reader key there); empty when neither is there."""
    if settings.STATUS_PROBE_API_KEY:
        return settings.STATUS_PROBE_API_KEY
    if settings.STATUS_PROBE_API_KEY_FILE:
        try:
            return Path(settings.STATUS_PROBE_API_KEY_FILE).read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError):
            return ""
    return ""


def _registry_outcomes(wanted: set[str]) -> dict[str, Outcome]:
    key = service_key()
    if not key:
        return {}  # not monitored: no result is better than a false outage
    check = StatusProbe(settings.HOKUSAI_REGISTRY_URL, key, deadline_seconds=PROBE_DEADLINE_SECONDS)
    steps = check.run()
    by_name = {step.name: step for step in steps}
    failure = next((step for step in steps if step.status == StepStatus.FAIL), None)

    def outcome_through(last: str) -> Outcome:
        names = list(by_name)
        upto = names[: names.index(last) + 1]
        elapsed = sum(by_name[name].duration_ms for name in upto)
        failed = next((by_name[name] for name in upto if by_name[name].status == StepStatus.FAIL), None)
        return Outcome(failed is None, elapsed, failed.cause if failed else "OK")

    outcomes = {}
    if "gateway" in wanted:
        outcomes["gateway"] = outcome_through("auth")
    if "registry" in wanted:
        outcomes["registry"] = outcome_through("registry_read")
    if "artifacts" in wanted:
        if failure is not None and failure.name != "registry_read":
            outcomes["artifacts"] = Outcome(False, 0, failure.cause)  # the registry in front of it is down
        else:
            outcomes["artifacts"] = _artifacts_outcome(key)
    return outcomes


def _artifacts_outcome(key: str) -> Outcome:
    from onboarding.registry_client import Deadline, RegistryClient

    started = time.perf_counter()
    client = RegistryClient(settings.HOKUSAI_REGISTRY_URL, key, deadline=Deadline(PROBE_DEADLINE_SECONDS))
    try:
        response = client.list_artifact_root()
        ok, cause = response.ok, "OK" if response.ok else f"HTTP_{response.status_code}"
    except Exception as exc:  # noqa: BLE001 - any failure is an outage of the store; only its type is kept
        ok, cause = False, type(exc).__name__[:40]
    finally:
        client.close()
    return Outcome(ok, round((time.perf_counter() - started) * 1000), cause)


def _portal_outcome(probe) -> Outcome:
    result = health.timed(probe)
    return Outcome(result["ok"], round(result["latency_ms"]), "OK" if result["ok"] else "PROBE_FAILED")


def probe_outcomes(components: list[PlatformComponent]) -> dict[int, Outcome]:
    wanted = {component.probe for component in components}
    outcomes = _registry_outcomes(wanted & {"gateway", "registry", "artifacts"})
    if "workers" in wanted:
        alive = lifecycle.workers_alive() > 0
        outcomes["workers"] = Outcome(alive, 0, "OK" if alive else "NO_WORKER")
    if "broker" in wanted:
        outcomes["broker"] = _portal_outcome(health.probe_broker)
    return {component.pk: outcomes[component.probe] for component in components if component.probe in outcomes}


def muted_component_ids(at: datetime) -> set[int]:
    return set(
        Maintenance.components.through.objects.filter(
            maintenance__starts_at__lte=at, maintenance__ends_at__gt=at
        ).values_list("platformcomponent_id", flat=True)
    )


def utc_hour_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def utc_day_start(at: datetime) -> datetime:
    return utc_hour_start(at).replace(hour=0)


@transaction.atomic
def result_record(*, component: PlatformComponent, at: datetime, outcome: Outcome, muted: bool = False) -> ProbeResult:
    """Save one result and count it into its hour and its UTC day (unless muted)."""
    result = ProbeResult.objects.create(
        component=component, at=at, ok=outcome.ok, latency_ms=outcome.latency_ms, cause=outcome.cause, muted=muted
    )
    if not muted:
        for kind, start in ((Rollup.Kind.HOUR, utc_hour_start(at)), (Rollup.Kind.DAY, utc_day_start(at))):
            Rollup.objects.get_or_create(component=component, kind=kind, start=start)
            Rollup.objects.filter(component=component, kind=kind, start=start).update(
                total=F("total") + 1,
                successes=F("successes") + int(outcome.ok),
                latency_ms_sum=F("latency_ms_sum") + outcome.latency_ms,
            )
    return result


def probes_run(now: datetime | None = None) -> list[ProbeResult]:
    """One round: every probed component's outcome, saved. Beat sends it every STATUS_PROBE_SECONDS."""
    now = now or timezone.now()
    components = list(PlatformComponent.objects.exclude(probe=""))
    outcomes = probe_outcomes(components)
    muted = muted_component_ids(now)
    saved = []
    for component in components:
        if component.pk in outcomes:
            saved.append(
                result_record(component=component, at=now, outcome=outcomes[component.pk], muted=component.pk in muted)
            )
    logger.info("status probes: %s", ", ".join(f"{r.component.slug}={'ok' if r.ok else r.cause}" for r in saved))
    return saved


def prune(now: datetime | None = None) -> tuple[int, int]:
    """Raw results older than 14 days and rollups older than 400 days go."""
    now = now or timezone.now()
    raw, _ = ProbeResult.objects.filter(at__lt=now - timedelta(days=RAW_RETENTION_DAYS)).delete()
    rolled, _ = Rollup.objects.filter(start__lt=now - timedelta(days=ROLLUP_RETENTION_DAYS)).delete()
    return raw, rolled
