"""Schemathesis against the live API (a real HTTP server on the test database): examples generated from
/api/v1/openapi.json for every operation, sent with a token of every scope (a support engineer, who may hold
them all); no answer is a 5xx, none breaks the schema (status codes, content types, bodies)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import checks
from schemathesis.generation import GenerationMode

from tests.conftest import objects_owned_by
from tests.test_api import token_for

pytestmark = pytest.mark.django_db(transaction=True)
EXAMPLES = 25  # per operation and mode: bounded, so CI stays quick
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def fuzz(
    operation, mode: GenerationMode, base_url: str, headers: dict, counts: dict[str, int], real: dict[str, str]
) -> None:
    """EXAMPLES cases of `operation` in `mode`, each sent and checked; answers counted by mode and status. Every
    other case addresses a real object (`real`), so bodies reach the services instead of a 404."""

    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        counts["sent"] = counts.get("sent", 0) + 1
        if case.path_parameters and counts["sent"] % 2:
            case.path_parameters = {name: real.get(name, value) for name, value in case.path_parameters.items()}
        response = case.call(base_url=base_url, headers=headers, timeout=40)
        key = f"{mode.value} {response.status_code}"
        counts[key] = counts.get(key, 0) + 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_the_schema_fuzzer_finds_no_5xx_and_no_answer_outside_the_schema(live_server, alice, bob, settings):
    settings.API_TOKEN_REQUESTS_PER_MINUTE = 100_000
    settings.DEBUG = False
    owned = objects_owned_by(alice)  # a check and an investigation to address
    real = {"run_id": owned["run_id"], "number": f"INV-{owned['number']}"}
    headers = {
        "Authorization": f"Bearer {token_for(bob, 'checks:run', 'checks:read', 'registrations:write', 'investigations:read', 'investigations:write', 'dashboard:read')}"
    }
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    counts: dict[str, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, live_server.url, headers, counts, real)
    total = counts.pop("sent")
    print(f"schema fuzz: {len(operations)} operations, {total} requests, by status {dict(sorted(counts.items()))}")
    assert total >= len(operations) * 2 and not any(key.split()[1].startswith("5") for key in counts)
    # Valid requests carry the token and reach the operations (negative ones may drop it: their 401s).
    assert "positive 401" not in counts and counts.get("positive 200", 0) > len(operations)
