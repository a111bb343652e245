"""The portal's own ASGI application and Celery app for tests/test_error_reports.py, with four bugs put in
where secrets are at hand, so that a real gunicorn and a real Celery worker (SENTRY_DSN set) fail while a key,
an access token, a session and a report note are in play:

- the key page: encrypting one particular key (the fixture's) fails, quoting it;
- the API: looking up a presented access token fails, quoting it;
- "Report a problem": filing the report fails, quoting the note;
- the worker: a connectivity check for the model `ErrorReportProbe` crashes, quoting the key it holds.

gunicorn serves `tests.error_reports_app:application`; `celery -A tests.error_reports_app worker` runs `app`."""

import re
from pathlib import Path

from hokusai_portal.asgi import application  # noqa: F401  (loads the settings: sentry-sdk starts here)
from hokusai_portal.celery import app  # noqa: F401

SEED_KEY = re.search(
    r"hk_live_[A-Za-z0-9]+", (Path(__file__).parent / "fixtures" / "lscor-investigation-plan.md").read_text()
).group(0)
PROBE_MODEL = "ErrorReportProbe"


class KeyRingBroken(Exception):
    pass


class TokenStoreDown(Exception):
    pass


class ReportStoreDown(Exception):
    pass


class RegistryClientBug(Exception):
    pass


def _put_bugs_in() -> None:
    from api import services as api_services
    from hokusai_portal import crypto
    from onboarding.checks import ConnectivityCheck
    from triage import reports

    encrypt = crypto.encrypt

    def encrypt_failing(plaintext: str) -> str:
        if plaintext == SEED_KEY:
            raise KeyRingBroken(f"no encryption key takes {plaintext}")
        return encrypt(plaintext)

    def token_digest_failing(token: str) -> str:
        raise TokenStoreDown(f"cannot look up {token}")

    def problem_report_failing(*, run, reporter, consent_rerun=False, note="", doctor_report=None):
        raise ReportStoreDown(f"could not file the note {note!r} for run {run.pk}")

    run = ConnectivityCheck.run

    def run_failing(self, on_step=None):
        if self.model_name == PROBE_MODEL:
            raise RegistryClientBug(f"the registry client crashed holding {self.api_key}")
        return run(self, on_step=on_step)

    crypto.encrypt = encrypt_failing
    api_services.token_digest = token_digest_failing
    reports.problem_report = problem_report_failing
    ConnectivityCheck.run = run_failing


_put_bugs_in()
