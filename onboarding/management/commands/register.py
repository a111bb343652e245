"""`python manage.py register --registry URL --model-uri ... --model-name ... --token-id ... --metric ...
--baseline ... [--json]`: the portal's checked registration from a shell or CI.

Same steps and JSON shape as `diagnose`; exit 0 only when registered and verified. The key is read
from HOKUSAI_API_KEY or standard input, never from argv."""

import hashlib

from django.conf import settings
from django.core.management.base import CommandError

from onboarding.management.cli import StepCommand, read_api_key, registry_url_argument
from onboarding.registration import RegistrationCheck
from onboarding.registration_input import RegistrationInputError, registration_validate


class Command(StepCommand):
    help = "Register a model version with Hokusai's tags, checked before and verified after."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--model-uri", required=True, help="runs:/<run_id>/model, models:/m-<id>, ...")
        parser.add_argument("--model-name", required=True)
        parser.add_argument("--token-id", required=True)
        parser.add_argument("--metric", required=True, help="metric name on the run, e.g. accuracy")
        parser.add_argument("--baseline", required=True, help="baseline value, e.g. 0.92")
        parser.add_argument("--proposal-identifier", default="")
        parser.add_argument("--tag", action="append", default=[], help="extra version tag key=value (repeatable)")

    def handle(self, *args, **options):
        registry_url = registry_url_argument(options["registry"] or settings.HOKUSAI_REGISTRY_URL)
        try:
            request = registration_validate(
                model_uri=options["model_uri"],
                model_name=options["model_name"],
                token_id=options["token_id"],
                metric_name=options["metric"],
                baseline_value=options["baseline"],
                proposal_identifier=options["proposal_identifier"],
                extra_tags="\n".join(options["tag"]),
            )
        except RegistrationInputError as error:
            options_named = {"metric_name": "metric", "baseline_value": "baseline", "extra_tags": "tag"}
            raise CommandError(
                "; ".join(
                    f"--{options_named.get(k, k).replace('_', '-')}: {v}"
                    + (f" ({error.causes[k]})" if k in error.causes else "")
                    for k, v in error.errors.items()
                )
            ) from None
        for warning in request.warnings:
            self.stderr.write(f"warning: {warning}")
        # The same request run again reuses its version (idempotent), as in the portal.
        idempotency_key = "cli-" + hashlib.sha256(request.idempotency_key(0).encode()).hexdigest()[:28]
        check = RegistrationCheck(registry_url, read_api_key(), request, idempotency_key=idempotency_key)
        self.run_steps(
            check,
            as_json=options["json"],
            ok_statuses=("pass", "warn"),
            extra={
                "result": lambda: {
                    "model_name": request.model_name,
                    "version": check.version,
                    "source": check.source,
                    "tags": check.tags,
                }
            },
        )
