"""/healthz reports database, broker, workers and registry with latency (the faults: test_run_lifecycle.py)."""

from devstack.server import free_port


def test_it_is_200_with_latency_when_everything_is_up(client, registry_url, live_worker):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    for name in ("database", "broker", "workers", "registry"):
        assert body["checks"][name]["ok"] is True
        assert body["checks"][name]["latency_ms"] >= 0


def test_it_goes_503_when_the_registry_stops_and_back_to_200_when_it_returns(client, settings, devstack, live_worker):
    """A stopped registry is a port nobody listens on (what starting and stopping a second MLflow server
    showed, in a tenth of the time): each /healthz asks anew, so the answer follows the registry."""
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    assert client.get("/healthz").status_code == 200
    settings.HOKUSAI_REGISTRY_URL = f"http://127.0.0.1:{free_port()}"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["registry"] == {
        "ok": False,
        "latency_ms": response.json()["checks"]["registry"]["latency_ms"],
        "error": "ConnectionError",
    }
    assert response.json()["failing"] == ["registry"]
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    assert client.get("/healthz").status_code == 200


def test_a_down_broker_makes_it_503(client, settings, registry_url, db):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_it_leaks_no_internal_detail(client, settings, db):
    settings.HOKUSAI_REGISTRY_URL = "http://127.0.0.1:1"
    body = client.get("/healthz").content.decode()
    assert "127.0.0.1" not in body
