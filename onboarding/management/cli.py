"""What `diagnose` and `register` share: the key from the environment or stdin, and the output."""

import json
import os
import sys

from django.core.management.base import BaseCommand, CommandError

SYMBOLS = {"pass": "✓", "warn": "!", "fail": "✗", "skipped": "–"}
JSON_FIELDS = ("name", "status", "cause", "message", "remedy", "duration_ms")


def read_api_key() -> str:
    """HOKUSAI_API_KEY, else one line of standard input; never argv (it shows in `ps`)."""
    key = os.environ.get("HOKUSAI_API_KEY", "")
    if key.strip():
        return key
    key = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.readline()
    if not key.strip():
        raise CommandError(
            "No API key: set HOKUSAI_API_KEY, or pipe the key on standard input (never pass it as an argument)."
        )
    return key


def registry_url_argument(value: str) -> str:
    url = value.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--registry must be an http:// or https:// URL, not {value!r}")
    return url


class StepCommand(BaseCommand):
    """Runs a StepRunner, printing steps as they finish (or one JSON object); exit 0 only when all pass."""

    def add_arguments(self, parser):
        parser.add_argument("--registry", default=None, help="registry URL (default: HOKUSAI_REGISTRY_URL)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def run_steps(self, runner, *, as_json: bool, extra: dict | None = None, ok_statuses=("pass",)) -> None:
        results = runner.run(on_step=None if as_json else self._print_step)
        ok = all(result.status in ok_statuses for result in results)
        if as_json:
            payload = {"ok": ok, "registry": runner.registry_url, **(extra or {})}
            payload["steps"] = [{k: result.as_dict()[k] for k in JSON_FIELDS} for result in results]
            if callable(payload.get("result")):
                payload["result"] = payload["result"]() if ok else None
            self.stdout.write(json.dumps(payload, ensure_ascii=False))
        else:
            self.stdout.write("All steps passed." if ok else "Not all steps passed.")
        sys.exit(0 if ok else 1)

    def _print_step(self, result) -> None:
        self.stdout.write(
            f"{SYMBOLS[result.status]} {result.title:<28} {result.cause:<26} {result.duration_ms:>5} ms  {result.message}"
        )
        if result.status in ("fail", "warn") and result.remedy:
            self.stdout.write(f"    how to fix: {result.remedy}")
