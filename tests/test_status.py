"""The public status page: probes against the real devstack registry (a reader key, a revoked key, a closed
port) and the real broker, states derived from their results, rollups, maintenance, incidents from public
investigations, /status.json in Statuspage's summary shape, badges, and the check page's warning."""

import random
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from devstack.server import free_port
from status import probes, selectors
from status.models import ComponentState, Maintenance, PlatformComponent, ProbeResult, Rollup
from triage import services as triage_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _uncached(settings):
    settings.STATUS_CACHE_SECONDS = 0  # each request computes the summary (the cache is measured in bench/)


@pytest.fixture
def probing(settings, devstack, devstack_keys):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    settings.STATUS_PROBE_API_KEY = devstack_keys["reader"]
    return settings


def component(slug: str) -> PlatformComponent:
    return PlatformComponent.objects.get(slug=slug)


def states() -> dict[str, str]:
    return {s.component.slug: s.state for s in selectors.component_statuses()}


def test_a_round_of_probes_against_a_healthy_registry(probing):
    saved = {r.component.slug: r for r in probes.probes_run()}
    assert {slug for slug, r in saved.items() if r.ok} >= {"gateway", "registry", "artifacts", "broker"}
    assert saved["workers"].ok is False and saved["workers"].cause == "NO_WORKER"  # none started in this test
    now = states()
    assert now["registry"] == ComponentState.OPERATIONAL and now["workers"] == ComponentState.DEGRADED
    day = Rollup.objects.get(component=component("registry"), kind="day")
    assert (day.total, day.successes) == (1, 1)


def test_a_revoked_service_key_fails_the_gateway_and_three_failures_are_a_major_outage(probing, devstack_keys):
    probing.STATUS_PROBE_API_KEY = devstack_keys["revoked"]
    for _ in range(3):
        probes.probes_run()
    gateway = ProbeResult.objects.filter(component=component("gateway")).first()
    assert (gateway.ok, gateway.cause) == (False, "AUTH_KEY_REJECTED")
    assert states()["gateway"] == ComponentState.MAJOR_OUTAGE


def test_a_registry_that_stopped_is_an_outage_and_the_portal_side_is_not(probing):
    probing.HOKUSAI_REGISTRY_URL = f"http://127.0.0.1:{free_port()}"
    probes.probes_run()
    probes.probes_run()
    now = states()
    assert now["registry"] == ComponentState.PARTIAL_OUTAGE  # 2 of the last 2 failed
    assert ProbeResult.objects.filter(component=component("registry")).first().cause == "CONNECT_REFUSED"
    assert now["broker"] == ComponentState.OPERATIONAL


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [
        ("ok ok ok ok ok", ComponentState.OPERATIONAL),
        ("FAIL ok ok ok ok", ComponentState.DEGRADED),
        ("ok FAIL ok FAIL ok", ComponentState.PARTIAL_OUTAGE),
        ("FAIL FAIL FAIL ok ok", ComponentState.MAJOR_OUTAGE),
        ("ok ok ok ok ok ok FAIL FAIL", ComponentState.OPERATIONAL),  # older than the newest 5
    ],
)
def test_state_thresholds(outcomes, state):
    now = timezone.now()
    registry = component("registry")
    for age, word in enumerate(outcomes.split()):
        ok = word == "ok"
        probes.result_record(
            component=registry, at=now - timedelta(minutes=age), outcome=probes.Outcome(ok, 80, "OK" if ok else "X")
        )
    assert states()["registry"] == state


def test_slow_probes_are_degraded_performance():
    now = timezone.now()
    for age in range(5):
        probes.result_record(
            component=component("registry"), at=now - timedelta(minutes=age), outcome=probes.Outcome(True, 7000)
        )
    assert states()["registry"] == ComponentState.DEGRADED


def test_the_portal_side_without_any_probe_result_is_a_major_outage_and_the_registry_is_not_monitored(settings):
    settings.STATUS_PROBE_API_KEY = ""
    settings.PORTAL_ENV = "production"  # no devstack key to fall back on
    statuses = {s.component.slug: s for s in selectors.component_statuses()}
    assert statuses["workers"].state == ComponentState.MAJOR_OUTAGE
    assert statuses["registry"].monitored is False and "Not monitored" in statuses["registry"].reason


def test_maintenance_mutes_probes_and_shows(probing):
    now = timezone.now()
    window = Maintenance.objects.create(
        title="Registry database upgrade", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1)
    )
    window.components.add(component("registry"))
    probing.HOKUSAI_REGISTRY_URL = f"http://127.0.0.1:{free_port()}"  # down for the upgrade
    probes.probes_run()
    result = ProbeResult.objects.filter(component=component("registry")).first()
    assert result.muted and not result.ok
    assert not Rollup.objects.filter(component=component("registry")).exists()  # not counted against uptime
    assert states()["registry"] == ComponentState.UNDER_MAINTENANCE
    body = Client().get("/status.json").json()
    (maintenance,) = body["scheduled_maintenances"]
    assert (maintenance["name"], maintenance["status"], maintenance["components"]) == (
        "Registry database upgrade",
        "in_progress",
        ["registry"],
    )
    assert "Maintenance in progress: Registry database upgrade" in Client().get("/status/").content.decode()


def test_uptime_from_rollups_equals_a_recount_of_the_raw_results():
    """14 days of one result a minute with random failures: the rollups' uptime is the raw recount's."""
    registry = component("registry")
    rng = random.Random(7)
    now = timezone.now().replace(second=0, microsecond=0)
    results = []
    for minute in range(0, 14 * 24 * 60, 7):  # every 7 minutes: 2,880 results across 15 UTC days
        ok = rng.random() > 0.03
        results.append(ok)
        probes.result_record(component=registry, at=now - timedelta(minutes=minute), outcome=probes.Outcome(ok, 50))
    status = next(s for s in selectors.component_statuses(now) if s.component.slug == "registry")
    recount = 100 * sum(results) / len(results)
    assert abs(status.uptime - recount) < 0.01
    hours = Rollup.objects.filter(component=registry, kind="hour")
    assert sum(h.total for h in hours) == len(results) == sum(b["total"] for b in status.bars)


def test_retention_drops_old_results_and_rollups():
    registry = component("registry")
    now = timezone.now()
    for days in (1, 15, 401):
        probes.result_record(component=registry, at=now - timedelta(days=days), outcome=probes.Outcome(True, 5))
    raw, rolled = probes.prune(now)
    assert ProbeResult.objects.count() == 1 and raw == 2
    assert not Rollup.objects.filter(start__lt=now - timedelta(days=400)).exists() and rolled == 2


def all_operational():
    for each in PlatformComponent.objects.all():
        probes.result_record(component=each, at=timezone.now(), outcome=probes.Outcome(True, 20))


def test_a_public_investigation_is_an_incident_with_its_public_updates_only(bob):
    all_operational()
    investigation, _ = triage_services.investigation_create(
        actor=bob, data={"title": "Uploads to the artifact store fail", "severity": "high", "public_incident": True}
    )
    investigation.status_components.add(component("artifacts"))
    triage_services.comment_add(investigation=investigation, actor=bob, body="We are rolling back.", internal=False)
    triage_services.comment_add(investigation=investigation, actor=bob, body="bucket creds in vault/7", internal=True)
    body = Client().get("/status.json").json()
    (incident,) = body["incidents"]
    assert incident["name"] == "Uploads to the artifact store fail"
    assert (incident["status"], incident["impact"], incident["components"]) == ("investigating", "major", ["artifacts"])
    updates = [u["body"] for u in incident["incident_updates"]]
    assert "We are rolling back." in updates and not any("vault" in u for u in updates)
    assert body["status"]["indicator"] == "major"
    page = Client().get("/status/").content.decode()
    assert "Uploads to the artifact store fail" in page and "vault" not in page


def test_status_json_has_statuspages_summary_shape(probing):
    probes.probes_run()
    body = Client().get("/status.json").json()
    assert set(body) == {"page", "status", "components", "incidents", "scheduled_maintenances"}
    assert set(body["page"]) >= {"id", "name", "url", "time_zone", "updated_at"}
    assert body["status"]["indicator"] in {"none", "minor", "major", "critical", "maintenance"}
    registry = next(c for c in body["components"] if c["id"] == "registry")
    assert registry["status"] == "operational" and registry["uptime_90d"] == 100.0
    assert {c["status"] for c in body["components"]} <= {s.value for s in ComponentState}


def test_a_badge_per_component(probing):
    probes.probes_run()
    answer = Client().get("/status/badge/registry.svg")
    assert answer["Content-Type"] == "image/svg+xml; charset=utf-8"
    svg = answer.content.decode()
    assert 'data-state="operational"' in svg and "Registry API: operational" in svg
    assert Client().get("/status/badge/no-such-thing.svg").status_code == 404


def test_the_check_page_names_a_degraded_component_and_its_incident(alice, bob):
    from tests.conftest import objects_owned_by

    gateway = component("gateway")
    gateway.manual_state = ComponentState.PARTIAL_OUTAGE
    gateway.save()
    investigation, _ = triage_services.investigation_create(
        actor=bob, data={"title": "Gateway rejects valid keys", "severity": "critical", "public_incident": True}
    )
    investigation.status_components.add(gateway)
    client = Client()
    client.force_login(alice)
    page = client.get(f"/onboarding/checks/{objects_owned_by(alice)['run_id']}/").content.decode()
    banner = page.split('data-testid="platform-degraded"')[1].split("</section>")[0]
    assert "API-key gateway" in banner and "partial outage" in banner and "Gateway rejects valid keys" in banner


def test_the_status_page_needs_no_login_and_explains_itself():
    page = Client().get("/status/").content.decode()
    assert "Hokusai platform status" in page and "Probes call the platform every minute" in page
    assert page.count('data-testid="component"') == PlatformComponent.objects.count()


def test_the_check_pages_warning_is_cached_on_its_own(settings):
    """Every check page asks what is degraded; the answer (almost always nothing) is cached apart from the
    summary, for as long, so a page reads back an empty list rather than the whole summary (issue 27)."""
    from django.core.cache import cache

    settings.STATUS_CACHE_SECONDS = 10
    depends_on = {"gateway", "registry", "artifacts"}
    assert selectors.degraded_for(depends_on) == []
    gateway = component("gateway")
    gateway.manual_state = ComponentState.PARTIAL_OUTAGE
    gateway.save()
    cache.delete("status:summary")
    assert selectors.degraded_for(depends_on) == []  # as stale as the status page, never staler
    assert selectors.status_summary()["indicator"] != "none"  # the summary itself was computed afresh
    cache.clear()
    [(status, incidents)] = selectors.degraded_for(depends_on)
    assert status.component.slug == "gateway" and incidents == []
