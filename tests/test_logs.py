"""Log lines: LOG_FORMAT=json objects with the ids, X-Request-ID, refusals on one line, secrets masked.
(The production-set test reads every line a whole `make production` wrote with LOG_FORMAT=json.)"""

import io
import json
import logging

import pytest
from django.urls import reverse

from hokusai_portal import logs


@pytest.fixture
def json_lines():
    """The portal's console handler as LOG_FORMAT=json configures it, writing to a buffer; the parsed lines."""
    config = logs.logging_config("json", "INFO")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    for name in config["handlers"]["console"]["filters"]:
        handler.addFilter(
            {"context": logs.ContextFilter, "redact": logs.RedactSecrets, "refusals": logs.ExpectedRefusalsOneLine}[
                name
            ]()
        )
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_a_refused_request_is_one_json_line_with_its_request_and_user(client, alice, json_lines):
    client.force_login(alice)
    response = client.get(reverse("triage:queue"), HTTP_X_REQUEST_ID="lb-request-0001")
    assert response.status_code == 403
    assert response["X-Request-ID"] == "lb-request-0001"
    (line,) = [r for r in json_lines() if r["logger"] == "django.request"]
    assert line["level"] == "WARNING" and line["message"].startswith("Forbidden")
    assert line["request_id"] == "lb-request-0001" and line["user_id"] == str(alice.pk)
    assert line["status_code"] == 403 and "exc_info" not in line  # one line: no traceback
    assert {"time", "level", "logger", "message", "request_id", "user_id", "run_id", "trace_id"} <= set(line)


def test_a_request_id_that_is_not_one_is_replaced(client, db):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    assert response["X-Request-ID"] != "<script>alert(1)</script>" and len(response["X-Request-ID"]) == 32


def test_a_check_pages_lines_carry_its_run_id(client, alice, json_lines):
    client.force_login(alice)
    client.get(reverse("onboarding:check_run", kwargs={"run_id": 987654}))  # no such run: a 404, logged
    (line,) = [r for r in json_lines() if r["logger"] == "django.request"]
    assert line["run_id"] == "987654" and line["status_code"] == 404 and "exc_info" not in line


def test_a_fault_keeps_its_traceback_and_loses_its_secrets(json_lines):
    key, secret = "hk_live_" + "Q7" * 16, "whsec_" + "c2VjcmV0c2VjcmV0c2VjcmV0"
    try:
        raise RuntimeError(f"registry refused {key}")
    except RuntimeError:
        logging.getLogger("onboarding.services").exception("check failed with Authorization: Bearer %s", secret[6:])
    logging.getLogger("webhooks").warning("signing with %s", secret)
    first, second = json_lines()
    text = json.dumps([first, second])
    assert key not in text and secret not in text and secret[6:] not in text
    assert "Traceback" in first["exc_info"] and "RuntimeError: registry refused hk_live_Q7Q7" in first["exc_info"]
    assert second["message"] == "signing with whsec_…"
