"""`python manage.py diagnose --registry URL [--json]`: the portal's connectivity check from a shell or CI.

The key is read from HOKUSAI_API_KEY or standard input, never from argv (argv shows in `ps`)."""

from django.conf import settings

from onboarding.checks import ConnectivityCheck
from onboarding.management.cli import StepCommand, read_api_key, registry_url_argument


class Command(StepCommand):
    help = "Diagnose connectivity to a Hokusai registry with an API key from HOKUSAI_API_KEY or stdin."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--model-name", default="", help="check write access to this registered model")

    def handle(self, *args, **options):
        registry_url = registry_url_argument(options["registry"] or settings.HOKUSAI_REGISTRY_URL)
        check = ConnectivityCheck(registry_url, read_api_key(), model_name=options["model_name"])
        self.run_steps(check, as_json=options["json"])
