"""`python manage.py diagnose --registry URL [--json]`: the portal's connectivity check from a shell or CI.

The key is read from HOKUSAI_API_KEY or standard input, never from argv (argv shows in `ps`)."""

import json as jsonlib
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from onboarding.checks import ConnectivityCheck

SYMBOLS = {"pass": "✓", "warn": "!", "fail": "✗", "skipped": "–"}


class Command(BaseCommand):
    help = "Diagnose connectivity to a Hokusai registry with an API key from HOKUSAI_API_KEY or stdin."

    def add_arguments(self, parser):
        parser.add_argument("--registry", default=None, help="registry URL (default: HOKUSAI_REGISTRY_URL)")
        parser.add_argument("--model-name", default="", help="check write access to this registered model")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def _read_key(self) -> str:
        key = os.environ.get("HOKUSAI_API_KEY", "")
        if key.strip():
            return key
        key = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.readline()
        if not key.strip():
            raise CommandError("No API key: set HOKUSAI_API_KEY, or pipe the key on standard input (never pass it as an argument).")
        return key

    def handle(self, *args, registry, model_name, **options):
        registry_url = (registry or settings.HOKUSAI_REGISTRY_URL).rstrip("/")
        if not registry_url.startswith(("http://", "https://")):
            raise CommandError(f"--registry must be an http:// or https:// URL, not {registry_url!r}")
        check = ConnectivityCheck(registry_url, self._read_key(), model_name=model_name)
        as_json = options["json"]
        results = check.run(on_step=None if as_json else self._print_step)
        ok = all(result.status == "pass" for result in results)
        if as_json:
            payload = {
                "ok": ok,
                "registry": registry_url,
                "steps": [
                    {
                        k: v
                        for k, v in result.as_dict().items()
                        if k in ("name", "status", "cause", "message", "remedy", "duration_ms")
                    }
                    for result in results
                ],
            }
            self.stdout.write(_json_dumps(payload))
        else:
            self.stdout.write("All steps passed." if ok else "Not all steps passed.")
        sys.exit(0 if ok else 1)

    def _print_step(self, result) -> None:
        self.stdout.write(
            f"{SYMBOLS[result.status]} {result.title:<28} {result.cause:<26} {result.duration_ms:>5} ms  {result.message}"
        )
        if result.status in ("fail", "warn") and result.remedy:
            self.stdout.write(f"    how to fix: {result.remedy}")


def _json_dumps(payload: dict) -> str:
    return jsonlib.dumps(payload, ensure_ascii=False)
