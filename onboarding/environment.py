"""The environment doctor, portal side: the script served for download, and the reports it prints read back.

The script (`hokusai_doctor.py`, beside this module) is standard library only and runs on the developer's
machine; the portal fills in the SDK build it expects and serves those exact bytes. A pasted report is
validated against the doctor's schema, redacted again, refused if a saved key survives redaction, and kept
as an EnvironmentReport with one EnvironmentCheck row per check (so the dashboard can count causes)."""

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from hokusai_portal.redaction import redact_value

from . import hokusai_doctor
from .models import ApiKey, EnvironmentCheck, EnvironmentReport
from .services import api_key_reveal

SCRIPT_PATH = Path(hokusai_doctor.__file__)
SCRIPT_NAME = "hokusai_doctor.py"
COMMIT_LINE = 'EXPECTED_SDK_COMMIT = ""'
COMMIT_PATTERN = re.compile(r"^[0-9a-fA-F]{7,40}$")

SCHEMA = hokusai_doctor.SCHEMA
CAUSES = hokusai_doctor.CAUSES
STATUSES = ("pass", "warn", "fail", "skip")
MAX_REPORT_BYTES = 256 * 1024
MAX_CHECKS = 100
MAX_TEXT = 4000
CAUSE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z.+-]{1,32}$")
FINGERPRINT_PATTERN = re.compile(r"^[0-9a-f]{8}$")


@dataclass(frozen=True)
class Guide:
    """The longer "how to fix it" the portal shows under a doctor cause's one-sentence remedy."""

    title: str
    steps: tuple[str, ...]


# The corporate network's causes (proxies, TLS inspection): each has a guide (checked by the tests).
GUIDES: dict[str, Guide] = {
    "PROXY_AUTH_REQUIRED": Guide(
        "Give the SDK your proxy account",
        (
            "The SDK talks to the registry through requests, which reads the proxy from HTTPS_PROXY (or "
            "https_proxy) and sends the user and password written in it to the proxy as Basic authentication.",
            "Set it with your account before the proxy's host, e.g. "
            "export HTTPS_PROXY=http://$PROXY_USER:$PROXY_PASSWORD@proxy.example.com:8080, URL-encoding special "
            "characters (@ is %40, : is %3A). Keep it out of shell history: read the password with `read -s`.",
            "If the report says the proxy asks for NTLM or Negotiate only, requests cannot answer it: run a local "
            "authenticating proxy (cntlm, px) and point HTTPS_PROXY at it, or ask your network team to let the "
            "registry's host through without authentication.",
            "Run `python hokusai_doctor.py --network` again: the doctor never prints the password.",
        ),
    ),
    "PROXY_BLOCKED": Guide(
        "Get the registry allowed through the proxy",
        (
            "Your proxy answered 403 to the request to reach the registry: its policy blocks the host.",
            'Send your network team the host and port from the evidence ("asked for") and ask for it to be '
            "allowed for HTTPS.",
            "If the registry is on your company's network, it should not go through the proxy at all: add its "
            "host to NO_PROXY (e.g. export NO_PROXY=registry.internal.example,$NO_PROXY).",
        ),
    ),
    "PROXY_TUNNEL_FAILED": Guide(
        "Find out why the proxy could not reach the registry",
        (
            "The proxy accepted the connection but could not open the way to the registry: 502 or 504 means it "
            "could not reach or resolve the host; a closed connection usually means a policy or a proxy that does "
            "not tunnel HTTPS.",
            "Check the endpoint's host name (HOKUSAI_API_ENDPOINT, MLFLOW_TRACKING_URI) for typos.",
            "If the registry is internal, add its host to NO_PROXY; otherwise send the status line in the "
            "evidence to your network team.",
        ),
    ),
    "PROXY_UNREACHABLE": Guide(
        "Fix or remove the proxy setting",
        (
            "Nothing answers at the proxy address the SDK would use (the evidence names the variable it came from).",
            "On the office network or VPN, check the host and port with your network team; away from it, unset "
            "the variable (unset HTTPS_PROXY https_proxy ALL_PROXY all_proxy).",
        ),
    ),
    "PROXY_INTERCEPTS": Guide(
        "The proxy answered instead of the registry",
        (
            "A page from the proxy (a block or login page) came back instead of the registry's answer.",
            "If the registry is internal, add its host to NO_PROXY; otherwise ask your network team to allow it.",
        ),
    ),
    "PROXY_SETTINGS_DIFFER": Guide(
        "Make your proxy variables say one thing",
        (
            "Your code goes the way requests (the SDK's HTTP stack) decides; the standard library and tools built "
            'on it (pip, curl) may go another way, which makes "it works in the browser" misleading.',
            "requests also reads ALL_PROXY and matches NO_PROXY by suffix and by network (10.0.0.0/8); urllib "
            "does neither. Set HTTPS_PROXY and HTTP_PROXY explicitly, and list hosts (not networks) in NO_PROXY.",
        ),
    ),
    "TLS_INSPECTED": Guide(
        "Trust your company's CA in the SDK, not by turning checks off",
        (
            "Your network re-signs HTTPS with the company's own CA (TLS inspection); the report names the issuer "
            "of the certificate that was presented.",
            "Get that CA certificate as a PEM file from IT (or export it from your system's certificate store).",
            'Make a bundle of the SDK\'s CAs plus it: cat "$(python -m certifi)" company-ca.pem > '
            "~/.hokusai/ca-bundle.pem (the report's fix has the exact path of the SDK's bundle).",
            "export REQUESTS_CA_BUNDLE=~/.hokusai/ca-bundle.pem (requests, which MLflow's client uses) and "
            "SSL_CERT_FILE to the same file (httpx); if MLFLOW_TRACKING_SERVER_CERT_PATH is set, point it there too.",
            "Never set MLFLOW_TRACKING_INSECURE_TLS or verify=False: anyone on the path could read your API key.",
        ),
    ),
    "TLS_TRUSTED_BY_SYSTEM_ONLY": Guide(
        "Give the SDK the CAs your system already trusts",
        (
            "Your system (and your browser) trust the certificate, but requests uses its own CA bundle "
            "(certifi's), which does not hold your company's CA.",
            'Make a bundle of both: cat "$(python -m certifi)" <your system\'s CA file> > '
            "~/.hokusai/ca-bundle.pem (the report's fix names both files).",
            "export REQUESTS_CA_BUNDLE=~/.hokusai/ca-bundle.pem, and SSL_CERT_FILE to the same file for httpx.",
        ),
    ),
    "TLS_VERIFY_DISABLED": Guide(
        "Turn certificate checks back on",
        (
            "With verification off, anyone on the path (an inspecting proxy included) can read your API key.",
            "Unset the variable the report names (MLFLOW_TRACKING_INSECURE_TLS, PYTHONHTTPSVERIFY).",
            "If a proxy made you turn it off, run the doctor with --network: it names the proxy's CA and prints "
            "the bundle to make instead.",
        ),
    ),
}


def guide_for(cause: str) -> Guide | None:
    return GUIDES.get(cause)


@dataclass(frozen=True)
class DoctorScript:
    content: bytes
    sha256: str
    version: str
    expected_commit: str

    @property
    def filename(self) -> str:
        return SCRIPT_NAME


@lru_cache(maxsize=4)
def _script(expected_commit: str, mtime: float) -> DoctorScript:
    text = SCRIPT_PATH.read_text(encoding="utf-8")
    if COMMIT_LINE not in text:
        raise RuntimeError(f"{SCRIPT_PATH} lost its line `{COMMIT_LINE}`: the portal cannot fill in the SDK build")
    if expected_commit:
        text = text.replace(COMMIT_LINE, f'EXPECTED_SDK_COMMIT = "{expected_commit.lower()}"', 1)
    content = text.encode("utf-8")
    return DoctorScript(content, hashlib.sha256(content).hexdigest(), hokusai_doctor.DOCTOR_VERSION, expected_commit)


def doctor_script() -> DoctorScript:
    """The exact bytes served for download (and printed by `manage.py doctor_script`)."""
    commit = settings.HOKUSAI_SDK_COMMIT
    if commit and not COMMIT_PATTERN.match(commit):
        commit = ""  # settings refuse a malformed value at start-up; never write one into the script
    return _script(commit, SCRIPT_PATH.stat().st_mtime)


key_fingerprint = hokusai_doctor.fingerprint  # the first 8 hex digits of a key's sha256, as the doctor prints it


class ReportInvalid(ValueError):
    """The pasted text is not a doctor report this portal can keep; the message says why and what to do."""


def _text(value, where: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ReportInvalid(f"{where} should be text.")
    if required and not value.strip():
        raise ReportInvalid(f"{where} is empty.")
    if len(value) > limit:
        raise ReportInvalid(f"{where} is longer than {limit} characters.")
    return value.replace("\x00", "")


def _check(raw, position: int) -> dict:
    where = f"Check {position}"
    if not isinstance(raw, dict):
        raise ReportInvalid(f"{where} is not an object with name, status, cause, message and remedy.")
    status = raw.get("status")
    if status not in STATUSES:
        raise ReportInvalid(f"{where} has status {str(status)[:20]!r}; expected one of {', '.join(STATUSES)}.")
    cause = raw.get("cause")
    if not isinstance(cause, str) or not CAUSE_PATTERN.match(cause):
        raise ReportInvalid(f"{where} has no cause code (upper-case letters and underscores, e.g. API_KEY_MISSING).")
    evidence = raw.get("evidence", {})
    if not isinstance(evidence, dict):
        raise ReportInvalid(f"{where}'s evidence should be an object.")
    return {
        "position": position,
        "name": _text(raw.get("name"), f"{where}'s name", limit=80),
        "status": status,
        "cause": cause,
        "message": _text(raw.get("message"), f"{where}'s message"),
        "remedy": _text(raw.get("remedy"), f"{where}'s remedy", required=False),
        "evidence": evidence,
    }


def report_parse(text: str) -> dict:
    """Validate a pasted `--json` report: {doctor_version, network, facts, checks, fingerprint}. Raises ReportInvalid."""
    text = (text or "").strip().lstrip("\ufeff")
    if not text:
        raise ReportInvalid(f"Paste the output of `python {SCRIPT_NAME} --json`, or upload it as a file.")
    if len(text.encode("utf-8", "replace")) > MAX_REPORT_BYTES:
        raise ReportInvalid(f"The report is over {MAX_REPORT_BYTES // 1024} KB; a doctor report is a few KB.")
    if text.startswith("Hokusai doctor"):
        raise ReportInvalid(f"That is the doctor's readable output. Run `python {SCRIPT_NAME} --json` and paste that.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportInvalid(
            f"This is not JSON (line {error.lineno}, column {error.colno}: {error.msg}). "
            f"Paste everything `python {SCRIPT_NAME} --json` printed."
        ) from None
    except (ValueError, RecursionError):
        raise ReportInvalid("This is not a doctor report: it is not readable JSON.") from None
    if not isinstance(data, dict) or "schema" not in data:
        raise ReportInvalid(f"This JSON is not a doctor report: it has no schema (expected {SCHEMA!r}).")
    if data["schema"] != SCHEMA:
        raise ReportInvalid(
            f"This report's schema is {str(data['schema'])[:40]!r}; this portal reads {SCHEMA!r}. "
            "Download the doctor again from this page."
        )
    version = data.get("doctor_version")
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        raise ReportInvalid("The report has no doctor_version.")
    facts = data.get("facts", {})
    if not isinstance(facts, dict):
        raise ReportInvalid("The report's facts should be an object.")
    raw_checks = data.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise ReportInvalid("The report has no checks.")
    if len(raw_checks) > MAX_CHECKS:
        raise ReportInvalid(f"The report has {len(raw_checks)} checks; a doctor report has at most {MAX_CHECKS}.")
    checks = [_check(raw, position) for position, raw in enumerate(raw_checks, start=1)]
    api_key = facts.get("api_key") if isinstance(facts.get("api_key"), dict) else {}
    fingerprint = api_key.get("fingerprint") if api_key.get("set") else ""
    if fingerprint and (not isinstance(fingerprint, str) or not FINGERPRINT_PATTERN.match(fingerprint)):
        raise ReportInvalid("The key's fingerprint in the report is not 8 hex digits.")
    return {
        "doctor_version": version,
        "network": bool(data.get("network")),
        "facts": facts,
        "checks": checks,
        "fingerprint": fingerprint or "",
    }


def _secret_survives(value, secrets: list[str]) -> bool:
    dumped = json.dumps(value, ensure_ascii=False)
    return any(secret and secret in dumped for secret in secrets)


def _saved_key(user: AbstractBaseUser) -> str | None:
    api_key = ApiKey.objects.filter(user=user).first()
    return api_key_reveal(api_key) if api_key else None


@transaction.atomic
def environment_report_save(*, user: AbstractBaseUser, text: str) -> EnvironmentReport:
    """Parse, redact again, refuse a report in which the user's saved key survives, and save it."""
    parsed = report_parse(text)
    saved = _saved_key(user)
    secrets = [saved] if saved else []
    (facts, checks), _ = redact_value([parsed["facts"], parsed["checks"]], *secrets)
    body = saved.split("_", 2)[2] if saved and saved.count("_") >= 2 else ""
    if _secret_survives([facts, checks], [saved or "", body]):
        raise ReportInvalid(
            "This report contains your API key, so it was not saved. Download the doctor again "
            "(it never prints keys) or remove the key from the text."
        )
    matches = None
    if parsed["fingerprint"] and saved:
        matches = parsed["fingerprint"] == key_fingerprint(saved)
    report = EnvironmentReport.objects.create(
        user=user,
        doctor_version=parsed["doctor_version"],
        ok=not any(check["status"] == "fail" for check in checks),
        network=parsed["network"],
        facts=facts,
        key_fingerprint=parsed["fingerprint"],
        key_matches=matches,
    )
    EnvironmentCheck.objects.bulk_create(EnvironmentCheck(report=report, **check) for check in checks)
    return report


def report_text_from(*, pasted: str, upload) -> str:
    """The report from a form: the uploaded file if there is one, else the pasted text. Raises ReportInvalid."""
    if upload is None:
        return pasted or ""
    if upload.size > MAX_REPORT_BYTES:
        raise ReportInvalid(f"The file is over {MAX_REPORT_BYTES // 1024} KB; a doctor report is a few KB.")
    raw = upload.read(MAX_REPORT_BYTES + 1)
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ReportInvalid("The file is not text: upload what `python hokusai_doctor.py --json > report.json` wrote.")
