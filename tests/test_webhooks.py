"""Outgoing webhooks delivered to a real HTTP receiver the tests start, each delivery verified with the
Standard Webhooks library (standardwebhooks): retries keep one id, a replay outside ±5 minutes is refused
by the verifier, rotation keeps deliveries verifiable with either secret, 3xx fails, 410 disables, 429
waits for Retry-After, 5 days of failures disable and email the owner, and failures are redelivered."""

import base64
import hashlib
import hmac
import http.server
import json
import threading
from datetime import timedelta

import pytest
import standardwebhooks.webhooks as standard
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifications.models import OutboxEmail
from onboarding.models import CheckRun
from onboarding.signals import check_run_finished
from tests.conftest import objects_owned_by
from triage import services as triage_services
from webhooks import services
from webhooks.models import Delivery, Endpoint, EventType, Message

pytestmark = pytest.mark.django_db


class Receiver:
    """Records every request; answers from a script of (status, headers), then 204."""

    def __init__(self):
        self.requests: list[tuple[dict, str]] = []
        self.script: list[tuple[int, dict]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status, headers = receiver.script.pop(0) if receiver.script else (204, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def endpoint(receiver, bob):
    created, secret = services.endpoint_create(url=receiver.url, event_types=list(EventType.values), owner=bob)
    created.plain_secret = secret
    return created


def verified(secret: str, headers: dict, body: str) -> dict:
    return Webhook(secret).verify(body, headers)


def test_every_delivery_verifies_with_the_specs_library(receiver, endpoint, bob):
    investigation, _ = triage_services.investigation_create(
        actor=bob, data={"title": "Gateway 403s", "severity": "high"}
    )
    finding = investigation.findings.create(title="Keys lack scope")
    triage_services.finding_set_status(
        finding=finding, actor=bob, status="verified", reason="Reproduced with a reader key."
    )
    triage_services.investigation_transition(
        investigation=investigation, actor=bob, status="resolved", resolution="cannot_reproduce"
    )
    services.deliver_due()
    payloads = [verified(endpoint.plain_secret, headers, body) for headers, body in receiver.requests]
    assert [p["type"] for p in payloads] == [
        "investigation.created",
        "finding.verdict_set",
        "investigation.status_changed",
        "investigation.resolved",
    ]
    assert payloads[1]["data"]["verdict"] == "verified" and payloads[2]["data"]["to"] == "resolved"
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 4
    assert Delivery.objects.filter(status="succeeded").count() == 4


def test_a_replay_outside_five_minutes_is_rejected_by_the_verifier(receiver, endpoint, bob, monkeypatch):
    triage_services.investigation_create(actor=bob, data={"title": "Replayed", "severity": "low"})
    services.deliver_due()
    (headers, body) = receiver.requests[0]
    assert verified(endpoint.plain_secret, headers, body)["type"] == "investigation.created"

    class Later(standard.datetime):
        @classmethod
        def now(cls, tz=None):
            return super().now(tz) + timedelta(minutes=6)

    monkeypatch.setattr(standard, "datetime", Later)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verified(endpoint.plain_secret, headers, body)


def test_a_receiver_that_fails_then_recovers_gets_the_message_once_with_one_id(receiver, endpoint, bob):
    receiver.script = [(500, {}), (503, {}), (200, {})]
    triage_services.investigation_create(actor=bob, data={"title": "Flaky receiver", "severity": "low"})
    now = timezone.now()
    assert services.deliver_due(now) == 1
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and 4.4 <= (delivery.next_attempt_at - now).total_seconds() <= 5.6
    assert services.deliver_due(now + timedelta(seconds=6)) == 1
    delivery.refresh_from_db()
    assert 270 <= (delivery.next_attempt_at - now - timedelta(seconds=6)).total_seconds() <= 330  # 5 min ± 10 %
    assert services.deliver_due(now + timedelta(minutes=7)) == 1
    assert services.deliver_due(now + timedelta(hours=30)) == 0  # succeeded: nothing more
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert [a.status_code for a in delivery.attempt_log.order_by("at")] == [500, 503, 200]
    verified(endpoint.plain_secret, *receiver.requests[0])  # (the later ones are signed "in the future" here)


def test_rotation_keeps_deliveries_verifiable_with_either_secret(receiver, endpoint, bob):
    old = endpoint.plain_secret
    new = services.secret_rotate(endpoint=endpoint)
    triage_services.investigation_create(actor=bob, data={"title": "Rotating", "severity": "low"})
    services.deliver_due()
    (headers, body) = receiver.requests[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verified(old, headers, body)["type"] == verified(new, headers, body)["type"] == "investigation.created"
    endpoint.refresh_from_db()
    assert (
        services.headers_for(endpoint, Message.objects.get(), body, timezone.now() + timedelta(hours=25))[
            "webhook-signature"
        ].count("v1,")
        == 1
    )  # the old secret stops signing after the overlap


def test_redirects_are_failures_410_disables_and_429_waits_for_retry_after(receiver, endpoint, bob):
    receiver.script = [(302, {"Location": receiver.url + "/elsewhere"}), (429, {"Retry-After": "120"}), (410, {})]
    triage_services.investigation_create(actor=bob, data={"title": "Odd receiver", "severity": "low"})
    now = timezone.now()
    services.deliver_due(now)
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and "3xx is a failure" in delivery.attempt_log.get().error
    assert len(receiver.requests) == 1  # the redirect was not followed
    services.deliver_due(now + timedelta(seconds=6))
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == now + timedelta(seconds=6) + timedelta(seconds=120)
    services.deliver_due(now + timedelta(seconds=130))
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "410" in endpoint.disabled_reason
    assert OutboxEmail.objects.filter(to=endpoint.owner.email, subject__contains="disabled").count() == 1
    triage_services.investigation_create(actor=bob, data={"title": "After 410", "severity": "low"})
    assert services.deliver_due(now + timedelta(hours=1)) == 0 and len(receiver.requests) == 3


def test_five_days_of_failures_disable_the_endpoint_and_email_its_owner(receiver, endpoint, bob):
    receiver.script = [(500, {})] * 3
    triage_services.investigation_create(actor=bob, data={"title": "Down for days", "severity": "low"})
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=now - timedelta(days=5))
    services.deliver_due(now)
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "5 days" in endpoint.disabled_reason
    assert Delivery.objects.get().status == "failed"
    assert OutboxEmail.objects.filter(to=bob.email).count() == 1


def test_legacy_headers_for_model_registered_receivers(receiver, endpoint, bob):
    Endpoint.objects.filter(pk=endpoint.pk).update(legacy_headers=True)
    triage_services.investigation_create(actor=bob, data={"title": "Legacy", "severity": "low"})
    services.deliver_due()
    (headers, body) = receiver.requests[0]
    key = base64.b64decode(endpoint.plain_secret.removeprefix("whsec_"))
    assert headers["x-hokusai-signature"] == "sha256=" + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    assert headers["x-hokusai-idempotency-key"] == headers["webhook-id"]


def test_registration_completed_and_opt_in_check_failed(receiver, bob, alice):
    wanted, secret = services.endpoint_create(url=receiver.url, event_types=["registration.completed"], owner=bob)
    ids = objects_owned_by(alice)
    registered = CheckRun.objects.get(kind="registration", user=alice)
    failed = CheckRun.objects.get(pk=ids["run_id"])
    check_run_finished.send(sender=CheckRun, run=registered)
    check_run_finished.send(sender=CheckRun, run=failed)  # not asked for by this endpoint
    services.deliver_due()
    (payload,) = [verified(secret, headers, body) for headers, body in receiver.requests]
    assert payload["type"] == "registration.completed"
    assert payload["data"]["model_name"] == f"Owned_By_{alice.pk}" and "key" not in json.dumps(payload).lower()
    assert payload["data"]["organization"]["name"] == f"Owned org {alice.pk}"  # the customer, by name


def test_support_manages_endpoints_and_redelivers_failures_in_a_range(receiver, endpoint, bob):
    receiver.script = [(500, {})] * 10
    triage_services.investigation_create(actor=bob, data={"title": "Will fail", "severity": "low"})
    now = timezone.now()
    elapsed = 0
    for delay in services.SCHEDULE:  # each attempt once it is due (delays with +10 % jitter at most)
        elapsed += delay * 1.11
        services.deliver_due(now + timedelta(seconds=elapsed))
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 10
    client = Client()
    client.force_login(bob)
    page = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert 'data-status="failed"' in page and endpoint.plain_secret in page
    today = timezone.localdate().isoformat()
    client.post(f"/webhooks/{endpoint.pk}/redeliver/", {"start": today, "end": today})
    services.deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len({h["webhook-id"] for h, _ in receiver.requests}) == 1
    before = Endpoint.objects.count()
    refused = client.post("/webhooks/", {"url": "ftp://example.com/x", "event_types": ["check.failed"]})
    assert refused.status_code == 200 and Endpoint.objects.count() == before


@pytest.mark.parametrize("dates", [("2026-01-02", "2026-01-01"), ("0001-01-01", "9999-12-31"), ("soon", "later")])
def test_a_bad_redelivery_range_gets_a_message_and_changes_nothing(endpoint, bob, dates):
    client = Client()
    client.force_login(bob)
    answer = client.post(f"/webhooks/{endpoint.pk}/redeliver/", {"start": dates[0], "end": dates[1]}, follow=True)
    assert answer.status_code == 200 and 'class="message error"' in answer.content.decode()
