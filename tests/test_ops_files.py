"""ops/: the Prometheus alert rules and the Grafana dashboard are valid, and every metric they use is one
/metrics really serves (a renamed metric would leave an alert that never fires)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

OPS = Path(__file__).resolve().parent.parent / "ops"
ALERTS = OPS / "prometheus-alerts.yml"
DASHBOARD = OPS / "grafana-dashboard.json"
TOKEN = "ops-files-metrics-token-0123456789"


def test_the_alert_rules_are_valid_prometheus_rules():
    promtool = shutil.which("promtool")
    if promtool:
        result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    # The shape Prometheus reads (also where promtool is not installed), and what the on-call needs.
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    names = []
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
            assert rule["expr"].strip() and rule["labels"]["severity"] in ("page", "warn")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            names.append(rule["alert"])
    # The list: worker heartbeat missing, queue wait p95, outbox/webhook backlog, failure ratio by cause.
    for wanted in (
        "HokusaiWorkerHeartbeatMissing",
        "HokusaiCheckQueueWaitHigh",
        "HokusaiOutboxBacklog",
        "HokusaiWebhookBacklog",
        "HokusaiCheckFailureRatioByCause",
    ):
        assert wanted in names


def _expressions() -> list[str]:
    rules = [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return rules + [target["expr"] for panel in panels for target in panel["targets"]]


def _served_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [])
        names.update(family.name + suffix for suffix in suffixes)
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_the_alerts_and_dashboard_use_is_served(client, settings, db):
    settings.METRICS_TOKEN = TOKEN
    client.get("/status.json")  # a request, so django-prometheus's per-status and per-view series exist
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    served = _served_names(response.content.decode())
    used = {name for expr in _expressions() for name in re.findall(r"\b((?:hokusai|django)_\w+)", expr)}
    assert used, "no metric found in ops/"
    assert not used - served, f"used in ops/ but not served: {sorted(used - served)}"


def test_the_dashboard_is_grafana_json_with_a_panel_per_figure():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "hokusai-portal" and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(target["expr"] for target in panel["targets"])
        assert panel["datasource"]["uid"] == "${datasource}"


@pytest.mark.parametrize("path", [ALERTS, DASHBOARD], ids=lambda p: p.name)
def test_no_ops_file_holds_a_token(path):
    assert not re.search(r"(hk_(live|test|dev)_|Bearer [A-Za-z0-9]{16,})", path.read_text())
