#!/usr/bin/env python3
"""Hokusai doctor: diagnoses the machine you run the Hokusai SDK on, before you file a bug.

    python hokusai_doctor.py              # offline: Python, SDK, ML extra, key sources, variables, TLS files
    python hokusai_doctor.py --network    # also probes the registry (health, server version, one read)
    python hokusai_doctor.py --json       # machine-readable: paste it into the Hokusai portal

One file, standard library only, Python 3.8 or newer: it runs where the SDK cannot (SDK missing, broken
import, name collision). No secret leaves your machine: a key is shown as its source, length, prefix and
fingerprint (the first 8 hex digits of its sha256); URLs lose credentials and query strings; your home
folder becomes ~. Exit status: 0 nothing failed, 1 a check failed, 2 the doctor itself broke.

It judges the way to the registry as the SDK's HTTP stack does (requests, asked in this Python: proxy
variables in either case, ALL_PROXY, NO_PROXY, CA bundles), probes that way, and when it fails says whether
the proxy refused (its address without credentials, its status line) or TLS is inspected (the issuer of the
certificate presented, read without trusting it, and the CA bundle that fixes it).

Cause codes are a contract: added, never renamed.
"""

import argparse
import base64
import configparser
import hashlib
import json
import os
import platform
import re
import socket
import ssl
import subprocess
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request

DOCTOR_VERSION = "1.1.0"
SCHEMA = "hokusai.doctor/v1"
# Filled in by the portal that serves this file (its HOKUSAI_SDK_COMMIT); empty: the build is not checked.
EXPECTED_SDK_COMMIT = ""

SDK_DISTRIBUTION = "hokusai-ml-platform"
DEFAULT_ENDPOINT = "https://registry.hokus.ai/api"
# Used when the SDK is not installed (its metadata says otherwise when it is).
DEFAULT_REQUIRES_PYTHON = ">=3.10"
DEFAULT_ML_EXTRA = {
    "mlflow": ">=3.9.0",
    "metaflow": "",
    "redis": "",
    "numpy": "",
    "pandas": "",
    "scikit-learn": "",
}
IMPORT_NAMES = {"scikit-learn": "sklearn"}
KEY_SHAPE = re.compile(r"^hk_(live|test|dev)_[A-Za-z0-9]{32,40}$")
TRUE_VALUES = ("1", "true", "yes", "on")
TIMEOUT = 10.0

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

# code -> (message, one-sentence remedy)
CAUSES = {
    "OK": ("All good.", ""),
    "PYTHON_UNSUPPORTED": (
        "This Python is older than the SDK supports.",
        "Install a supported Python (see the requirement in the evidence) and create a fresh virtualenv with it.",
    ),
    "SDK_NOT_INSTALLED": (
        "The Hokusai SDK (hokusai-ml-platform) is not installed in this Python.",
        "Run `python -m pip install 'hokusai-ml-platform[ml]'` with the same python you run your code with.",
    ),
    "HOKUSAI_NAME_COLLISION": (
        "`import hokusai` does not load the Hokusai SDK: another package or file named hokusai shadows it.",
        "Uninstall the other package (`python -m pip uninstall hokusai`) or rename the local hokusai file or folder.",
    ),
    "SDK_BUILD_STALE": (
        "The installed SDK is not the current build (its version says 1.0.0 in every build).",
        "Reinstall it: `python -m pip install --force-reinstall --no-cache-dir 'hokusai-ml-platform[ml]'`.",
    ),
    "ML_EXTRA_MISSING": (
        "The SDK's [ml] extra is not installed: registering a model needs it.",
        "Run `python -m pip install 'hokusai-ml-platform[ml]'` (quotes included: some shells eat the brackets).",
    ),
    "ML_EXTRA_VERSION_CONFLICT": (
        "A package of the [ml] extra has a version the SDK does not accept.",
        "Run `python -m pip install --upgrade 'hokusai-ml-platform[ml]'` to get the versions the SDK needs.",
    ),
    "ML_IMPORT_MASKED": (
        "An ML package is installed but fails to import; the SDK reports it as a missing extra "
        "(MissingMLExtraError), which hides the real error shown here.",
        "Fix the import error shown in the evidence (often a missing or broken dependency: reinstall that package).",
    ),
    "CLIENT_SERVER_VERSION_SKEW": (
        "Your mlflow and the registry's mlflow differ in major or minor version.",
        "Install the registry's version: `python -m pip install 'mlflow==<server version>'` (see the evidence).",
    ),
    "INTERPRETER_MISMATCH": (
        "The Python running this is not the one your pip, virtualenv or hokusai command belongs to.",
        "Use `python -m pip` with the python you run your code with, or activate the intended virtualenv.",
    ),
    "DEPENDENCY_CONFLICT": (
        "An installed package does not satisfy a requirement of the SDK or mlflow.",
        "Reinstall with `python -m pip install --upgrade 'hokusai-ml-platform[ml]'`, then run `python -m pip check`.",
    ),
    "API_KEY_MISSING": (
        "No Hokusai API key: not in HOKUSAI_API_KEY, ~/.hokusai/config, ./.hokusai or ./hokusai.ini.",
        "Set HOKUSAI_API_KEY to the key from your Hokusai account settings.",
    ),
    "MLFLOW_TOKEN_WITHOUT_HOKUSAI_KEY": (
        "MLFLOW_TRACKING_TOKEN is set but no Hokusai key is: the SDK never uses MLFLOW_TRACKING_TOKEN as the key.",
        "Set HOKUSAI_API_KEY to the same key (the SDK then sets MLFLOW_TRACKING_TOKEN itself).",
    ),
    "ENV_TOKEN_SHADOWED": (
        "Your key sources hold different keys: the SDK uses the first, the others are ignored or overwritten.",
        "Keep one key: remove or update the sources listed in the evidence so they all hold the same key.",
    ),
    "BASIC_AUTH_SHADOWS_TOKEN": (
        "MLflow has a username/password or an auth plugin configured: it sends those instead of your API key.",
        "Unset the variables (or remove ~/.mlflow/credentials) listed in the evidence.",
    ),
    "ENDPOINT_VAR_MISNAMED": (
        "The endpoint is set in a variable the Python SDK does not read for its API calls.",
        "Set HOKUSAI_API_ENDPOINT instead (HOKUSAI_API_BASE_URL belongs to the TypeScript SDK).",
    ),
    "TRACKING_URI_NONCANONICAL": (
        "MLFLOW_TRACKING_URI does not point at the Hokusai endpoint's MLflow path.",
        "Unset MLFLOW_TRACKING_URI (the SDK derives `{endpoint}/mlflow`) or set it to the value in the evidence.",
    ),
    "MOCK_MODE_ENABLED": (
        "Mock mode is on: the SDK pretends calls succeed, so nothing reaches the registry.",
        "Unset HOKUSAI_MOCK_MODE and HOKUSAI_OPTIONAL_MLFLOW.",
    ),
    "KEY_MALFORMED": (
        "The API key is not shaped like a Hokusai key (hk_live_, hk_test_ or hk_dev_ and 32 to 40 letters or digits).",
        "Copy the key again from your Hokusai account settings: no quotes, spaces or line breaks.",
    ),
    "PROXY_INTERCEPTS": (
        "A proxy between you and the registry answers instead of the registry.",
        "Add the registry host to NO_PROXY, or ask your network team to allow it through the proxy.",
    ),
    "PROXY_AUTH_REQUIRED": (
        "Your proxy refused to open the way to the registry: it wants credentials (407).",
        "Put your proxy account in the proxy variable the SDK reads: `user:password@` before the proxy's host "
        "(URL-encode special characters): requests sends it to the proxy as Basic; the doctor never prints it.",
    ),
    "PROXY_BLOCKED": (
        "Your proxy refuses to connect to the registry: the site is blocked (403).",
        "Ask your network team to allow the registry's host (in the evidence) on its port; "
        "if the registry is internal, add its host to NO_PROXY instead.",
    ),
    "PROXY_TUNNEL_FAILED": (
        "Your proxy could not open the way to the registry: it answered an error, or closed the connection.",
        "Check the registry's host name in the endpoint; if the registry is internal, add its host to NO_PROXY; "
        "otherwise send the proxy's answer (in the evidence) to your network team.",
    ),
    "PROXY_UNREACHABLE": (
        "The proxy your environment names cannot be reached.",
        "Check the proxy variable in the evidence (host, port, on the office network or VPN), "
        "or unset it if you are not behind that proxy.",
    ),
    "PROXY_SETTINGS_DIFFER": (
        "The SDK and the standard library take different routes to the registry: one through a proxy, the other not.",
        "Make the proxy variables agree (see the evidence); the SDK follows the route shown as the SDK's.",
    ),
    "TLS_INSPECTED": (
        "The registry's certificate is issued by someone else (TLS inspection by a proxy), whose CA the SDK does "
        "not trust.",
        "Make a bundle of the SDK's CAs plus your company's CA and point REQUESTS_CA_BUNDLE at it; "
        "never turn verification off.",
    ),
    "TLS_TRUSTED_BY_SYSTEM_ONLY": (
        "Your system trusts the registry's certificate, but the SDK's HTTP stack (requests, with its own CA "
        "bundle) does not.",
        "Make a bundle of the SDK's CAs plus your system's and point REQUESTS_CA_BUNDLE at it.",
    ),
    "CA_BUNDLE_MISSING": (
        "A CA bundle variable names a file that does not exist, or one MLflow never reads.",
        "Point the variable at an existing PEM file, or unset it; MLflow reads MLFLOW_TRACKING_SERVER_CERT_PATH.",
    ),
    "CA_BUNDLE_PARTIAL": (
        "A CA bundle replaces the system's certificates but holds few or none of them.",
        "Append your proxy's CA to a full bundle (e.g. certifi's) instead of replacing it, and point the variable there.",
    ),
    "TLS_VERIFY_DISABLED": (
        "TLS certificate verification is turned off: anyone on the path can read your API key.",
        "Unset the variable in the evidence; if a proxy needs it, add the proxy's CA to your bundle instead.",
    ),
    "API_UNREACHABLE": (
        "The registry could not be reached.",
        "Check the endpoint for typos and that outbound HTTPS is allowed; if it is right, see the Hokusai status page.",
    ),
    "API_KEY_REJECTED": (
        "The registry rejected the API key.",
        "Create a new key in your Hokusai account settings and put it in HOKUSAI_API_KEY.",
    ),
    "DOCTOR_CRASHED": (
        "The doctor itself failed on this check.",
        "Send this output to Hokusai support: it is a bug in the doctor, not in your setup.",
    ),
}


# --- redaction ------------------------------------------------------------------------------------


class Scrubber:
    """Replaces secrets, home folders, URL credentials and query strings in everything printed."""

    KEY_TEXT = re.compile(r"\bhk_(?:[A-Za-z0-9]+_)?[A-Za-z0-9]{6,}")

    def __init__(self):
        self.secrets = []
        self.home = os.path.expanduser("~")

    def add(self, secret):
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets.append(secret)

    def text(self, value):
        value = str(value)
        for secret in sorted(self.secrets, key=len, reverse=True):
            value = value.replace(secret, "<redacted>")
        value = self.KEY_TEXT.sub("hk_<redacted>", value)
        value = re.sub(r"(?i)(bearer|apikey)\s+[A-Za-z0-9._~+/=-]{8,}", r"\1 <redacted>", value)
        value = re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@", r"\1", value)  # credentials in URLs
        value = re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#]*)[?#][^\s]*", r"\1", value)  # query strings
        if self.home and len(self.home) > 1:
            value = value.replace(self.home, "~")
        return value

    def value(self, value):
        if isinstance(value, dict):
            return {self.text(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


SCRUB = Scrubber()


def fingerprint(secret):
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:8]


def describe_secret(secret, source):
    """What may be said about a key: never the key."""
    prefix = secret[: secret.find("_", 3) + 1] if secret.startswith("hk_") and secret.find("_", 3) > 0 else ""
    return {"set": True, "source": source, "length": len(secret), "prefix": prefix, "fingerprint": fingerprint(secret)}


def clean_url(url):
    """scheme://host[:port]/path: no user, password, query or fragment."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.netloc.rpartition("@")[2]  # not .port: a port out of range must not crash the report
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def truthy(value):
    return (value or "").strip().lower() in TRUE_VALUES


# --- versions and requirements (a small subset of PEP 440 / 508, enough for the SDK's pins) --------------


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def version_tuple(text):
    parts = []
    for piece in re.split(r"[.+!-]", text or ""):
        match = re.match(r"^(\d+)", piece)
        if not match:
            break
        parts.append(int(match.group(1)))
    return tuple(parts) or (0,)


def _pad(a, b):
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


def satisfies(version, specifier):
    """Whether `version` meets every clause of `specifier` (e.g. ">=3.9.0,<4"); an empty one always does."""
    for clause in filter(None, (c.strip() for c in (specifier or "").split(","))):
        match = re.match(r"^(~=|===|==|!=|<=|>=|<|>)\s*(.+)$", clause)
        if not match:
            continue
        op, wanted = match.group(1), match.group(2).strip()
        if op in ("==", "!=") and wanted.endswith(".*"):
            prefix = version_tuple(wanted[:-2])
            equal = version_tuple(version)[: len(prefix)] == prefix
            if equal != (op == "=="):
                return False
            continue
        have, want = _pad(version_tuple(version), version_tuple(wanted))
        ok = {
            "==": have == want,
            "===": version == wanted,
            "!=": have != want,
            "<=": have <= want,
            ">=": have >= want,
            "<": have < want,
            ">": have > want,
        }.get(op)
        if op == "~=":
            floor = version_tuple(wanted)
            ceiling = floor[:-2] + (floor[-2] + 1,) if len(floor) >= 2 else (floor[0] + 1,)
            ok = have >= want and version_tuple(version) < ceiling
        if not ok:
            return False
    return True


def parse_requirement(text):
    """'mlflow>=3.9.0; extra == "ml"' -> (name, extras, specifier, marker)."""
    requirement, _, marker = text.partition(";")
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*\(?([^)]*)\)?\s*$", requirement)
    if not match:
        return None
    return canonical(match.group(1)), match.group(2) or "", match.group(3).strip(), marker.strip()


def marker_extra(marker):
    match = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", marker or "")
    return canonical(match.group(1)) if match else None


# --- the environment -------------------------------------------------------------------------------


def _metadata():
    import importlib.metadata as metadata  # noqa: PLC0415 (3.8+; kept here so a broken stdlib is one check's failure)

    return metadata


def installed():
    """canonical name -> Distribution, for every distribution on sys.path (first one wins, as import does)."""
    found = {}
    for dist in _metadata().distributions():
        name = dist.metadata["Name"]
        if name and canonical(name) not in found:
            found[canonical(name)] = dist
    return found


def read_key_file(path):
    """The key in an SDK config file: INI (`api_key = ...` in any section), `key=value` lines, or the bare key."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
        for section in [parser.defaults()] + [parser[s] for s in parser.sections()]:
            for name in ("api_key", "hokusai_api_key", "key"):
                if section.get(name):
                    return section.get(name).strip()
    except configparser.Error:
        pass
    match = re.search(r"(?im)^\s*(?:export\s+)?(?:hokusai_)?api_key\s*[=:]\s*(.+?)\s*$", text)
    if match:
        return match.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return lines[0] if len(lines) == 1 else None


class Environment:
    """Everything the checks read, gathered once (and the only place that reads os.environ and files)."""

    def __init__(self, environ=None, cwd=None, home=None):
        self.environ = dict(os.environ if environ is None else environ)
        self.cwd = cwd or os.getcwd()
        self.home = home or os.path.expanduser("~")
        self.distributions = installed()
        self.key_sources = []  # [(source, key)] in the SDK's order
        env_key = self.environ.get("HOKUSAI_API_KEY")
        if env_key:
            self.key_sources.append(("HOKUSAI_API_KEY", env_key))
        for label, path in (
            ("~/.hokusai/config", os.path.join(self.home, ".hokusai", "config")),
            ("./.hokusai", os.path.join(self.cwd, ".hokusai")),
            ("./hokusai.ini", os.path.join(self.cwd, "hokusai.ini")),
        ):
            if os.path.isfile(path):
                value = read_key_file(path)
                if value:
                    self.key_sources.append((label, value))
        for _, key in self.key_sources:
            SCRUB.add(key)
            SCRUB.add(key.strip().strip("'\""))
        for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD"):
            SCRUB.add(self.environ.get(name))
        for name, value in self.environ.items():  # a proxy's password, wherever it shows up (URLs lose it anyway)
            if name.lower().endswith("_proxy") and "@" in value:
                try:
                    password = urllib.parse.urlsplit(value).password
                except ValueError:
                    password = None
                SCRUB.add(password)
                SCRUB.add(urllib.parse.unquote(password or ""))
        self.routes = {}  # origin -> Route, as the SDK's HTTP stack judges it (see sdk_route)
        self.endpoint = (self.environ.get("HOKUSAI_API_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.canonical_tracking_uri = self.endpoint + "/mlflow"
        self.tracking_uri = (self.environ.get("MLFLOW_TRACKING_URI") or self.canonical_tracking_uri).rstrip("/")

    @property
    def key(self):
        return self.key_sources[0][1] if self.key_sources else None

    def dist(self, name):
        return self.distributions.get(canonical(name))

    def version(self, name):
        dist = self.dist(name)
        return dist.version if dist is not None else None

    def sdk_requirements(self):
        """The SDK's Requires-Dist split into (base, ml extra); the documented ones when it is not installed."""
        dist = self.dist(SDK_DISTRIBUTION)
        if dist is None:
            return {}, dict(DEFAULT_ML_EXTRA)
        base, extra = {}, {}
        for line in dist.requires or []:
            parsed = parse_requirement(line)
            if parsed is None:
                continue
            name, _, specifier, marker = parsed
            which = marker_extra(marker)
            if which == "ml":
                extra[name] = specifier
            elif not marker:
                base[name] = specifier
        return base, extra or dict(DEFAULT_ML_EXTRA)

    def facts(self):
        sdk = self.dist(SDK_DISTRIBUTION)
        key = self.key
        env = {}
        for name in sorted(self.environ):
            if not name.startswith(("MLFLOW_", "HOKUSAI_")) and name.upper() not in (
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
                "NO_PROXY",
                "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE",
                "SSL_CERT_FILE",
                "SSL_CERT_DIR",
                "VIRTUAL_ENV",
            ):
                continue
            value = self.environ[name]
            if re.search(r"TOKEN|PASSWORD|KEY|SECRET", name) and "CA_BUNDLE" not in name:
                env[name] = describe_secret(value, name) if value else {"set": False}
            elif "://" in value:
                env[name] = clean_url(value)
            else:
                env[name] = value
        return {
            "python": {
                "version": platform.python_version(),
                "implementation": platform.python_implementation(),
                "executable": sys.executable,
                "prefix": sys.prefix,
                "virtualenv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
            },
            "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine()},
            "sdk": {
                "installed": sdk is not None,
                "version": sdk.version if sdk is not None else None,
                "commit": sdk_install_record(sdk).get("commit") if sdk is not None else None,
            },
            "packages": {
                name: self.version(name)
                for name in ["mlflow", "metaflow", "redis", "numpy", "pandas", "scikit-learn"]
                + ["pydantic", "httpx", "requests", "click", "hokusai"]
            },
            "api_key": describe_secret(key, self.key_sources[0][0]) if key else {"set": False},
            "key_sources": [describe_secret(value, source) for source, value in self.key_sources],
            "endpoint": clean_url(self.endpoint),
            "tracking_uri": clean_url(self.tracking_uri),
            "environment": env,
        }


def sdk_install_record(dist):
    """The install record (PEP 610 direct_url.json): where the SDK came from and, from git, its commit."""
    try:
        text = dist.read_text("direct_url.json")
    except Exception:  # noqa: BLE001 - a corrupt record is reported as unknown
        text = None
    if not text:
        return {}
    try:
        record = json.loads(text)
    except ValueError:
        return {"error": "direct_url.json is not JSON"}
    vcs = record.get("vcs_info") or {}
    return {
        "url": clean_url(record.get("url", "")),
        "commit": vcs.get("commit_id"),
        "editable": bool((record.get("dir_info") or {}).get("editable")),
    }


# --- checks ----------------------------------------------------------------------------------------


class Check:
    def __init__(self, name, status, cause="OK", message="", remedy=None, evidence=None):
        self.name = name
        self.status = status
        self.cause = cause
        default_message, default_remedy = CAUSES.get(cause, ("", ""))
        self.message = message or default_message
        self.remedy = default_remedy if remedy is None else remedy
        if status in (PASS, SKIP):
            self.remedy = remedy or ""
        self.evidence = evidence or {}

    def as_dict(self):
        return SCRUB.value(
            {
                "name": self.name,
                "status": self.status,
                "cause": self.cause,
                "message": self.message,
                "remedy": self.remedy,
                "evidence": self.evidence,
            }
        )


def ok(name, message, evidence=None):
    return Check(name, PASS, "OK", message, "", evidence)


def check_python(env):
    sdk = env.dist(SDK_DISTRIBUTION)
    requires = (sdk.metadata.get("Requires-Python") if sdk is not None else None) or DEFAULT_REQUIRES_PYTHON
    current = platform.python_version()
    evidence = {"python": current, "requires": requires, "from": "SDK metadata" if sdk is not None else "documented"}
    if not satisfies(current, requires):
        return Check(
            "python", FAIL, "PYTHON_UNSUPPORTED", f"Python {current}; the SDK requires {requires}.", evidence=evidence
        )
    return ok("python", f"Python {current} meets {requires}.", evidence)


def _owner_of(env, module_path):
    """The distribution whose RECORD lists `module_path`, if any."""
    target = os.path.realpath(module_path)
    for name, dist in env.distributions.items():
        for file in dist.files or []:
            if str(file).replace("\\", "/").split("/")[0] not in ("hokusai", "hokusai.py"):
                continue
            try:
                if os.path.realpath(str(dist.locate_file(file))) == target:
                    return name
            except Exception:  # noqa: BLE001
                continue
    return None


def check_sdk(env):
    import importlib.util  # noqa: PLC0415

    sdk = env.dist(SDK_DISTRIBUTION)
    others = [name for name in env.distributions if name == "hokusai"]
    try:
        spec = importlib.util.find_spec("hokusai")
    except (ImportError, ValueError) as error:
        spec, spec_error = None, str(error)
    else:
        spec_error = None
    origin = None
    if spec is not None:
        origin = (
            spec.origin
            if spec.origin not in (None, "namespace")
            else next(iter(spec.submodule_search_locations or []), None)
        )
    evidence = {"distribution": sdk.version if sdk is not None else None, "import hokusai loads": origin}
    if spec_error:
        evidence["import_error"] = spec_error
    if others:
        evidence["other distributions named hokusai"] = others
        return Check(
            "sdk",
            FAIL,
            "HOKUSAI_NAME_COLLISION",
            "Another package named hokusai ({}) is installed beside the SDK.".format(", ".join(others))
            if sdk is not None
            else "The package named hokusai installed here is not the Hokusai SDK.",
            evidence=evidence,
        )
    if sdk is None:
        if origin:
            return Check(
                "sdk",
                FAIL,
                "HOKUSAI_NAME_COLLISION",
                f"`import hokusai` loads {SCRUB.text(origin)}, which no installed package provides; the SDK is not installed.",
                evidence=evidence,
            )
        return Check("sdk", FAIL, "SDK_NOT_INSTALLED", evidence=evidence)
    owner = _owner_of(env, origin) if origin else None
    evidence["provided by"] = owner
    if origin and owner != canonical(SDK_DISTRIBUTION):
        return Check(
            "sdk",
            FAIL,
            "HOKUSAI_NAME_COLLISION",
            f"`import hokusai` loads {SCRUB.text(origin)} instead of the installed SDK.",
            evidence=evidence,
        )
    return ok("sdk", f"hokusai-ml-platform {sdk.version} is installed and `import hokusai` loads it.", evidence)


def check_sdk_build(env):
    sdk = env.dist(SDK_DISTRIBUTION)
    if sdk is None:
        return Check("sdk build", SKIP, "SKIPPED", "The SDK is not installed.")
    record = sdk_install_record(sdk)
    evidence = dict(record, expected=EXPECTED_SDK_COMMIT or None, version=sdk.version)
    if not EXPECTED_SDK_COMMIT:
        return Check("sdk build", SKIP, "SKIPPED", "The portal did not name the current SDK build.", evidence=evidence)
    installed_commit = record.get("commit")
    if record.get("editable"):
        return ok("sdk build", "The SDK is an editable checkout: its build is whatever the checkout holds.", evidence)
    if not installed_commit:
        return Check(
            "sdk build",
            WARN,
            "SDK_BUILD_STALE",
            "The SDK's install record has no commit: this build cannot be told from an old one.",
            evidence=evidence,
        )
    short = min(len(installed_commit), len(EXPECTED_SDK_COMMIT))
    if installed_commit[:short].lower() != EXPECTED_SDK_COMMIT[:short].lower() or short < 7:
        return Check(
            "sdk build",
            WARN,
            "SDK_BUILD_STALE",
            f"The SDK was built from commit {installed_commit[:12]}; the current build is {EXPECTED_SDK_COMMIT[:12]}.",
            evidence=evidence,
        )
    return ok("sdk build", f"The SDK is the current build ({installed_commit[:12]}).", evidence)


def import_errors(python, modules, environ):
    """Import each module in a fresh interpreter: name -> the real error's last line (or None if it imports)."""
    code = (
        "import importlib, json, sys, traceback\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        out[name] = None\n"
        "    except BaseException as error:\n"
        "        out[name] = traceback.format_exception_only(type(error), error)[-1].strip()\n"
        "print(json.dumps(out))\n"
    )
    child_env = dict(environ)
    child_env.pop("PYTHONSTARTUP", None)
    result = subprocess.run(
        [python, "-c", code] + list(modules),
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {
            name: (result.stderr.strip().splitlines() or ["the import crashed the interpreter"])[-1] for name in modules
        }


def check_ml_extra(env):
    _, extra = env.sdk_requirements()
    missing = sorted(name for name in extra if env.version(name) is None)
    versions = {name: env.version(name) for name in sorted(extra)}
    if missing:
        return Check(
            "ml extra",
            FAIL,
            "ML_EXTRA_MISSING",
            "Not installed: {}.".format(", ".join(missing)),
            evidence={"missing": missing, "installed": versions},
        )
    conflicts = {
        name: f"{env.version(name)} installed, {spec} required"
        for name, spec in sorted(extra.items())
        if spec and not satisfies(env.version(name), spec)
    }
    if conflicts:
        return Check(
            "ml extra",
            FAIL,
            "ML_EXTRA_VERSION_CONFLICT",
            "; ".join("{}: {}".format(*item) for item in conflicts.items()) + ".",
            evidence={"conflicts": conflicts},
        )
    return ok(
        "ml extra",
        "The [ml] extra is installed: {}.".format(", ".join("{} {}".format(*kv) for kv in versions.items())),
        {"installed": versions},
    )


def check_ml_import(env):
    _, extra = env.sdk_requirements()
    present = [name for name in sorted(extra) if env.version(name) is not None]
    if not present:
        return Check("ml import", SKIP, "SKIPPED", "No package of the [ml] extra is installed.")
    modules = [IMPORT_NAMES.get(name, name.replace("-", "_")) for name in present]
    try:
        errors = import_errors(sys.executable, modules, env.environ)
    except subprocess.TimeoutExpired:
        return Check(
            "ml import",
            WARN,
            "ML_IMPORT_MASKED",
            "Importing the ML packages took over 120 s.",
            evidence={"modules": modules},
        )
    broken = {name: error for name, error in errors.items() if error}
    if broken:
        first = sorted(broken)[0]
        return Check(
            "ml import",
            FAIL,
            "ML_IMPORT_MASKED",
            f"`import {first}` fails with: {broken[first]}",
            evidence={"import errors": broken},
        )
    return ok("ml import", "Each ML package imports: {}.".format(", ".join(modules)))


def _interpreter_home(path):
    """The environment an interpreter belongs to: its virtualenv folder, else the real executable."""
    path = os.path.abspath(path)
    root = os.path.dirname(os.path.dirname(path))
    if os.path.isfile(os.path.join(root, "pyvenv.cfg")):
        return os.path.realpath(root)
    return os.path.realpath(path)


def _shebang(path):
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if not parts:
        return None
    if os.path.basename(parts[0]) == "env":  # `#!/usr/bin/env python3`: what PATH finds
        return None
    if parts[0] == "/bin/sh" and len(parts) == 1:  # pip's long-path trampoline: `'''exec' /path/python ...`
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                match = re.search(r"'''exec' '?([^' ]+)", handle.read(2048))
        except OSError:
            return None
        return match.group(1) if match else None
    return parts[0]


def _which(name, environ):
    for folder in (environ.get("PATH") or "").split(os.pathsep):
        candidate = os.path.join(folder, name)
        if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def check_interpreter(env):
    here = sys.prefix if sys.prefix != getattr(sys, "base_prefix", sys.prefix) else sys.executable
    here = _interpreter_home(os.path.join(here, "bin", "python")) if os.path.isdir(here) else os.path.realpath(here)
    problems, evidence = [], {"running": sys.executable}
    active = env.environ.get("VIRTUAL_ENV")
    if active:
        evidence["VIRTUAL_ENV"] = active
        if os.path.realpath(active) != os.path.realpath(sys.prefix):
            problems.append(f"the virtualenv {active} is active, but this Python is {sys.executable}")
    for command in ("pip", "pip3", "hokusai"):
        path = _which(command, env.environ)
        interpreter = _shebang(path) if path else None
        if not interpreter:
            continue
        evidence[f"{command} runs"] = interpreter
        if _interpreter_home(interpreter) != here:
            problems.append(f"`{command}` on your PATH belongs to {interpreter}, not to {sys.executable}")
    if problems:
        return Check(
            "interpreter",
            WARN,
            "INTERPRETER_MISMATCH",
            "; ".join(problems)[:1].upper() + "; ".join(problems)[1:] + ".",
            evidence=evidence,
        )
    return ok("interpreter", "pip, the active virtualenv and the hokusai command belong to this Python.", evidence)


def check_dependencies(env):
    base, _ = env.sdk_requirements()
    owners = {}
    if env.dist(SDK_DISTRIBUTION) is not None:
        owners[SDK_DISTRIBUTION] = base
    mlflow = env.dist("mlflow")
    if mlflow is not None:
        owners["mlflow"] = {}
        for line in mlflow.requires or []:
            parsed = parse_requirement(line)
            if parsed and not parsed[3]:  # requirements without markers: always needed
                owners["mlflow"][parsed[0]] = parsed[2]
    if not owners:
        return Check("dependencies", SKIP, "SKIPPED", "Neither the SDK nor mlflow is installed.")
    conflicts = []
    for owner, requirements in owners.items():
        for name, specifier in sorted(requirements.items()):
            have = env.version(name)
            if have is None:
                conflicts.append(f"{owner} requires {name}{specifier}, which is not installed")
            elif specifier and not satisfies(have, specifier):
                conflicts.append(f"{owner} requires {name}{specifier}, but {name} {have} is installed")
    if conflicts:
        return Check("dependencies", FAIL, "DEPENDENCY_CONFLICT", conflicts[0] + ".", evidence={"conflicts": conflicts})
    return ok("dependencies", "The requirements of {} are met.".format(" and ".join(sorted(owners))))


def key_problem(key):
    """Why a key is not shaped like a Hokusai key, without saying what it is; None when it is."""
    if KEY_SHAPE.match(key):
        return None
    if key != key.strip():
        return "it has spaces or line breaks around it"
    if key[:1] in "\"'" or key[-1:] in "\"'":
        return "it is wrapped in quotes"
    if re.match(r"(?i)^(bearer|apikey)\s", key):
        return "it starts with an Authorization scheme (Bearer/ApiKey)"
    if any(c.isspace() for c in key):
        return "it has a space or line break inside"
    if not key.startswith(("hk_live_", "hk_test_", "hk_dev_")):
        return "it does not start with hk_live_, hk_test_ or hk_dev_"
    body = key.split("_", 2)[2]
    if not re.match(r"^[A-Za-z0-9]*$", body):
        return "it has characters other than letters and digits after the prefix"
    return f"its {len(body)} characters after the prefix are not 32 to 40"


def check_api_key(env):
    token = env.environ.get("MLFLOW_TRACKING_TOKEN")
    if not env.key_sources:
        if token:
            return Check(
                "api key",
                FAIL,
                "MLFLOW_TOKEN_WITHOUT_HOKUSAI_KEY",
                evidence={"MLFLOW_TRACKING_TOKEN": describe_secret(token, "MLFLOW_TRACKING_TOKEN")},
            )
        return Check("api key", FAIL, "API_KEY_MISSING")
    source, key = env.key_sources[0]
    evidence = {"used": describe_secret(key, source)}
    problem = key_problem(key)
    if problem:
        return Check(
            "api key",
            FAIL,
            "KEY_MALFORMED",
            f"The key from {source} is not a Hokusai key: {problem}.",
            evidence=evidence,
        )
    return ok("api key", f"A key is set in {source} (fingerprint {fingerprint(key)}).", evidence)


def check_key_sources(env):
    sources = [describe_secret(value, source) for source, value in env.key_sources]
    token = env.environ.get("MLFLOW_TRACKING_TOKEN")
    if token and env.key_sources:
        sources.append(describe_secret(token, "MLFLOW_TRACKING_TOKEN"))
    prints = {s["fingerprint"] for s in sources}
    if len(sources) < 2:
        return ok("key sources", "One key source.", {"sources": sources})
    if len(prints) > 1:
        used = sources[0]
        ignored = ", ".join(
            "{} ({})".format(s["source"], s["fingerprint"])
            for s in sources[1:]
            if s["fingerprint"] != used["fingerprint"]
        )
        return Check(
            "key sources",
            WARN,
            "ENV_TOKEN_SHADOWED",
            "The SDK uses the key from {} ({}); these hold other keys: {}.".format(
                used["source"], used["fingerprint"], ignored
            ),
            evidence={"sources": sources},
        )
    return ok("key sources", f"{len(sources)} key sources hold the same key.", {"sources": sources})


def _mlflow_credentials_file(env):
    path = env.environ.get("MLFLOW_CREDENTIALS_FILE") or os.path.join(env.home, ".mlflow", "credentials")
    if not os.path.isfile(path):
        return None, []
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return path, ["unreadable"]
    found = []
    for section in parser.sections():
        for name in ("mlflow_tracking_username", "mlflow_tracking_password"):
            if parser[section].get(name):
                found.append(f"{name} in [{section}]")
    return path, found


def check_mlflow_auth(env):
    evidence = {}
    for name in (
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_AUTH",
        "MLFLOW_TRACKING_AWS_SIGV4",
        "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    ):
        value = env.environ.get(name)
        if value and (name != "MLFLOW_TRACKING_AWS_SIGV4" or truthy(value)):
            evidence[name] = "set" if "PASSWORD" in name else value
    path, found = _mlflow_credentials_file(env)
    if found:
        evidence[path] = found
    evidence.pop("MLFLOW_TRACKING_CLIENT_CERT_PATH", None)  # a client certificate travels with the token
    if evidence:
        return Check(
            "mlflow auth",
            FAIL,
            "BASIC_AUTH_SHADOWS_TOKEN",
            "MLflow will authenticate with {}, not your API key.".format(", ".join(sorted(evidence))),
            evidence=evidence,
        )
    return ok("mlflow auth", "Nothing overrides the API key MLflow sends.")


def check_endpoint(env):
    evidence = {"HOKUSAI_API_ENDPOINT": clean_url(env.endpoint)}
    misnamed = {
        name: clean_url(env.environ[name])
        for name in ("HOKUSAI_API_BASE_URL", "HOKUSAI_API_URL")
        if env.environ.get(name)
    }
    if misnamed and not env.environ.get("HOKUSAI_API_ENDPOINT"):
        evidence.update(misnamed)
        return Check(
            "endpoint",
            WARN,
            "ENDPOINT_VAR_MISNAMED",
            "{} is set but HOKUSAI_API_ENDPOINT is not: the SDK calls {}.".format(
                " and ".join(sorted(misnamed)), clean_url(DEFAULT_ENDPOINT)
            ),
            evidence=evidence,
        )
    return ok("endpoint", f"The SDK calls {clean_url(env.endpoint)}.", evidence)


def check_tracking_uri(env):
    given = env.environ.get("MLFLOW_TRACKING_URI")
    evidence = {
        "MLFLOW_TRACKING_URI": clean_url(given) if given else None,
        "expected": clean_url(env.canonical_tracking_uri),
    }
    if given and given.rstrip("/") != env.canonical_tracking_uri:
        return Check(
            "tracking uri",
            WARN,
            "TRACKING_URI_NONCANONICAL",
            f"MLFLOW_TRACKING_URI is {clean_url(given)}; the Hokusai endpoint's MLflow is {clean_url(env.canonical_tracking_uri)}.",
            evidence=evidence,
        )
    return ok("tracking uri", f"MLflow talks to {clean_url(env.tracking_uri)}.", evidence)


def check_mock_mode(env):
    on = {
        name: env.environ[name]
        for name in ("HOKUSAI_MOCK_MODE", "HOKUSAI_OPTIONAL_MLFLOW")
        if truthy(env.environ.get(name))
    }
    if on:
        return Check("mock mode", FAIL, "MOCK_MODE_ENABLED", "{} is on.".format(" and ".join(sorted(on))), evidence=on)
    return ok("mock mode", "Mock mode is off.")


def _count_certificates(path):
    try:
        with open(path, "rb") as handle:
            text = handle.read(20 * 1024 * 1024)
    except OSError:
        return None
    return text.count(b"-----BEGIN CERTIFICATE-----")


def check_ca_bundle(env):
    evidence, missing, partial = {}, [], []
    for name in ("MLFLOW_TRACKING_SERVER_CERT_PATH", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        path = env.environ.get(name)
        if not path:
            continue
        evidence[name] = path
        if not os.path.isfile(path):
            missing.append(f"{name} names {path}, which does not exist")
            continue
        count = _count_certificates(path)
        loads = True
        try:
            ssl.create_default_context(cafile=path)
        except (ssl.SSLError, OSError, ValueError):
            loads = False
        evidence[name + " certificates"] = count
        if not loads or not count:
            partial.append(f"{name} holds no readable certificate")
        elif count < 5 and name != "MLFLOW_TRACKING_SERVER_CERT_PATH":
            partial.append(f"{name} holds {count} certificate(s) and replaces the system's store")
    if env.environ.get("SSL_CERT_DIR") and not os.path.isdir(env.environ["SSL_CERT_DIR"]):
        missing.append("SSL_CERT_DIR names {}, which is not a folder".format(env.environ["SSL_CERT_DIR"]))
    if env.environ.get("MLFLOW_TRACKING_CA_BUNDLE_PATH") and not env.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        evidence["MLFLOW_TRACKING_CA_BUNDLE_PATH"] = env.environ["MLFLOW_TRACKING_CA_BUNDLE_PATH"]
        missing.append(
            "MLFLOW_TRACKING_CA_BUNDLE_PATH is set, but MLflow never reads it: "
            "it reads MLFLOW_TRACKING_SERVER_CERT_PATH"
        )
    if missing:
        return Check("ca bundle", FAIL, "CA_BUNDLE_MISSING", "; ".join(missing) + ".", evidence=evidence)
    if partial:
        return Check(
            "ca bundle",
            WARN if all("replaces" in p for p in partial) else FAIL,
            "CA_BUNDLE_PARTIAL",
            "; ".join(partial) + ".",
            evidence=evidence,
        )
    return ok(
        "ca bundle",
        "No CA bundle override, or the ones set are full." if not evidence else "CA bundles load.",
        evidence,
    )


def check_tls_verify(env):
    off = {}
    if truthy(env.environ.get("MLFLOW_TRACKING_INSECURE_TLS")):
        off["MLFLOW_TRACKING_INSECURE_TLS"] = env.environ["MLFLOW_TRACKING_INSECURE_TLS"]
    if env.environ.get("PYTHONHTTPSVERIFY", "").strip() == "0":
        off["PYTHONHTTPSVERIFY"] = "0"
    if off:
        return Check(
            "tls verify",
            WARN,
            "TLS_VERIFY_DISABLED",
            "{} turns certificate checks off.".format(" and ".join(sorted(off))),
            evidence=off,
        )
    return ok("tls verify", "Certificate verification is on.")


# --- the route the SDK takes: its proxy and its CAs, as requests judges them ------------------------------

# Run by the developer's Python: what requests (the HTTP stack of MLflow's client) makes of the environment
# for one URL. MLflow passes verify=MLFLOW_TRACKING_SERVER_CERT_PATH, else False when insecure, else True.
REQUESTS_PROBE = (
    "import json, sys\n"
    "url, verify = sys.argv[1], sys.argv[2]\n"
    "verify = {'': True, '0': False}.get(verify, verify)\n"
    "try:\n"
    "    import requests, requests.certs, requests.utils\n"
    "    settings = requests.Session().merge_environment_settings(url, {}, None, verify, None)\n"
    "    out = {'version': requests.__version__, 'proxy': requests.utils.select_proxy(url, settings['proxies']),\n"
    "           'verify': settings['verify'], 'default_ca': requests.certs.where()}\n"
    "except Exception as error:\n"
    "    out = {'error': '%s: %s' % (type(error).__name__, error)}\n"
    "print(json.dumps(out))\n"
)
# Issuers (organisation or common name) of the public CAs a registry's certificate comes from.
PUBLIC_CAS = (
    "Amazon",
    "Let's Encrypt",
    "ISRG",
    "Google Trust Services",
    "DigiCert",
    "Sectigo",
    "COMODO",
    "GlobalSign",
    "Entrust",
    "GoDaddy",
    "Starfield",
    "IdenTrust",
    "Microsoft",
    "Cloudflare",
    "ZeroSSL",
    "Baltimore",
    "Buypass",
    "SSL.com",
    "Certainly",
    "Actalis",
    "HARICA",
)
CA_BUNDLE_TARGET = "~/.hokusai/ca-bundle.pem"


def stdlib_proxies(environ):
    """urllib.request.getproxies_environment() on these variables: any case is read, lower case wins, an empty
    lower-case variable unsets, HTTP_PROXY is ignored under CGI (REQUEST_METHOD)."""
    proxies = {}
    for name, value in environ.items():
        lowered = name.lower()
        if value and lowered[-6:] == "_proxy":
            proxies[lowered[:-6]] = value
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in environ.items():
        if name[-6:] == "_proxy":
            if value:
                proxies[name.lower()[:-6]] = value
            else:
                proxies.pop(name.lower()[:-6], None)
    return proxies


def stdlib_proxy_for(environ, url):
    """The proxy urllib's ProxyHandler uses for `url`: <scheme>_proxy unless NO_PROXY matches (ALL_PROXY: never)."""
    proxies = stdlib_proxies(environ)
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    if not proxies.get(parts.scheme) or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxies[parts.scheme]


def requests_proxy_for(environ, url):
    """requests' get_environ_proxies + select_proxy, for a Python where requests cannot be asked: NO_PROXY also
    by suffix and by network (10.0.0.0/8), then urllib's rules, then <scheme>_proxy or ALL_PROXY."""
    import ipaddress  # noqa: PLC0415

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    entries = [entry for entry in no_proxy.replace(" ", "").split(",") if entry]
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        address = None
    for entry in entries:
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return None
            except ValueError:
                continue
        else:
            with_port = host + (f":{parts.port}" if parts.port else "")
            if host.endswith(entry) or with_port.endswith(entry):
                return None
    proxies = stdlib_proxies(environ)
    if proxies and urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


class Route:
    """How the SDK's HTTP stack reaches a URL (its proxy, the CAs it trusts), and urllib's proxy for the same."""

    def __init__(self, url, proxy, verify, default_ca, judged_by, stdlib_proxy, proxy_source):
        self.url, self.proxy, self.verify, self.default_ca = url, proxy, verify, default_ca
        self.judged_by, self.stdlib_proxy, self.proxy_source = judged_by, stdlib_proxy, proxy_source

    @property
    def proxy_scheme(self):
        return urllib.parse.urlsplit(self.proxy).scheme.lower() if self.proxy else ""

    @property
    def ca(self):
        """The CA file or folder the SDK verifies with; None: the system's (or unknown)."""
        if isinstance(self.verify, str):
            return self.verify
        return self.default_ca if self.verify is True else None

    def context(self):
        if self.verify is False:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            return context
        ca = self.ca
        if ca and os.path.isdir(ca):
            return ssl.create_default_context(capath=ca)
        return ssl.create_default_context(cafile=ca if ca and os.path.isfile(ca) else None)

    def describe(self, stdlib=False):
        proxy = self.stdlib_proxy if stdlib else self.proxy
        return f"through the proxy {clean_url(proxy)}" if proxy else "directly"


def _with_scheme(proxy):
    """`proxy:8080` is read as http://proxy:8080 by requests and urllib alike."""
    if not proxy:
        return None
    return proxy if "://" in proxy else "http://" + proxy


def _proxy_source(environ, proxy):
    names = [name for name in environ if name.lower().endswith("_proxy") and environ[name] == proxy]
    return sorted(names, key=lambda name: (name != name.lower(), name))[0] if names else None


def sdk_route(env, url):
    """The route requests takes in this Python (asked in a subprocess), else the doctor's reading of its rules."""
    parts = urllib.parse.urlsplit(url)
    origin = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/", "", ""))  # proxies and CAs go by host
    if origin in env.routes:
        return env.routes[origin]
    verify = env.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or (
        "0" if truthy(env.environ.get("MLFLOW_TRACKING_INSECURE_TLS")) else ""
    )
    child_env = dict(env.environ)
    child_env.pop("PYTHONSTARTUP", None)
    try:
        result = subprocess.run(
            [sys.executable, "-c", REQUESTS_PROBE, origin, verify],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
        asked = json.loads(result.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        asked = {"error": "requests could not be asked"}
    if "error" not in asked:
        proxy, verify, default_ca = asked.get("proxy"), asked.get("verify"), asked.get("default_ca")
        judged_by = "requests {}".format(asked.get("version"))
    else:
        proxy = requests_proxy_for(env.environ, url)
        if verify == "0":
            verify = False
        else:
            verify = verify or env.environ.get("REQUESTS_CA_BUNDLE") or env.environ.get("CURL_CA_BUNDLE") or True
        default_ca = None
        judged_by = "the doctor's reading of requests' rules (requests is not importable here)"
    source = _proxy_source(env.environ, proxy)
    route = Route(
        url,
        _with_scheme(proxy),
        verify,
        default_ca,
        judged_by,
        _with_scheme(stdlib_proxy_for(env.environ, url)),
        source,
    )
    env.routes[origin] = route
    return route


def check_proxy_route(env):
    url = env.tracking_uri
    route = sdk_route(env, url)
    evidence = {
        "url": clean_url(url),
        "the SDK": route.describe(),
        "judged by": route.judged_by,
        "the standard library (urllib)": route.describe(stdlib=True),
        "the SDK trusts": route.ca or ("nothing: verification is off" if route.verify is False else "the system's CAs"),
    }
    if route.proxy_source:
        evidence["proxy from"] = route.proxy_source
    if clean_url(route.proxy or "") == clean_url(route.stdlib_proxy or ""):
        return ok("proxy route", f"The SDK reaches {clean_url(url)} {route.describe()}.", evidence)
    why = []
    lowered = {name.lower(): value for name, value in env.environ.items() if value}
    scheme = urllib.parse.urlsplit(url).scheme
    if route.proxy and not route.stdlib_proxy and "all_proxy" in lowered and scheme + "_proxy" not in lowered:
        why.append("ALL_PROXY is read by requests, never by urllib")
    if not route.proxy and route.stdlib_proxy:
        why.append(
            "NO_PROXY ({}) matches the host for requests only (it also matches by suffix and by network)".format(
                lowered.get("no_proxy", "")
            )
        )
    return Check(
        "proxy route",
        WARN,
        "PROXY_SETTINGS_DIFFER",
        "For {} the SDK ({}) goes {}; the standard library goes {}{}. The SDK's route is the one your code takes "
        "(and the one --network follows).".format(
            clean_url(url),
            route.judged_by,
            route.describe(),
            route.describe(stdlib=True),
            ": " + "; ".join(why) if why else "",
        ),
        evidence=evidence,
    )


OFFLINE_CHECKS = [
    check_python,
    check_sdk,
    check_sdk_build,
    check_ml_extra,
    check_ml_import,
    check_dependencies,
    check_interpreter,
    check_api_key,
    check_key_sources,
    check_mlflow_auth,
    check_endpoint,
    check_tracking_uri,
    check_mock_mode,
    check_ca_bundle,
    check_tls_verify,
    check_proxy_route,
]


# --- network ---------------------------------------------------------------------------------------


class Answer:
    def __init__(self, status, body, headers, via_proxy):
        self.status, self.body, self.headers, self.via_proxy = status, body, headers, via_proxy


def fetch(env, url, key=None):
    """A GET the way the SDK sends it: its proxy, its CAs (the doctor's bytes go through urllib)."""
    route = sdk_route(env, url)
    proxy = route.proxy if route.proxy_scheme in ("http", "https") else None
    handlers = [urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=route.context()))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": "hokusai-doctor/" + DOCTOR_VERSION})
    if key:
        request.add_header("Authorization", "Bearer " + key)
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return Answer(
                response.status, response.read(65536).decode("utf-8", "replace"), dict(response.headers), bool(proxy)
            )
    except urllib.error.HTTPError as error:
        body = error.read(65536).decode("utf-8", "replace") if error.fp else ""
        return Answer(error.code, body, dict(error.headers or {}), bool(proxy))


def _reason(error):
    reason = getattr(error, "reason", error)
    if isinstance(reason, socket.timeout) or "timed out" in str(reason):
        return f"timed out after {TIMEOUT:.0f} s"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted: {}".format(getattr(reason, "verify_message", reason))
    if isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower():
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "host name does not resolve"
    return str(reason)


class ProxyRefused(Exception):
    """The proxy did not open the way: a cause, a message naming the proxy, evidence without credentials."""

    def __init__(self, cause, message, evidence, remedy=None):
        super().__init__(message)
        self.cause, self.message, self.evidence, self.remedy = cause, message, evidence, remedy


def _read_head(sock):
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _auth_schemes(headers):
    return ", ".join(
        value.split(" ", 1)[0]
        for name, value in headers
        if name.lower() == "proxy-authenticate" and value.split(" ", 1)[0]
    )


def _proxy_auth_remedy(route, schemes, sent):
    where = route.proxy_source or "HTTPS_PROXY"
    if schemes and "basic" not in schemes.lower():
        return (
            f"Your proxy asks for {schemes}, which requests cannot answer: run a local authenticating proxy "
            f"(e.g. cntlm or px) and point {where} at it, or ask your network team to let the registry's host through."
        )
    if sent:
        return (
            f"The proxy refused the user and password in {where}: check them (URL-encode special characters, "
            "e.g. @ as %40) or ask your network team whether your account may use the proxy."
        )
    return (
        f"Put your proxy account in {where}: `user:password@` before the proxy's host (http:// then "
        "user:password@proxy:port; URL-encode special characters, e.g. @ as %40): requests sends it to the proxy "
        "as Basic. Never paste it into a report: the doctor masks it."
    )


def _connect_proxy(route):
    proxy = urllib.parse.urlsplit(route.proxy)
    address = clean_url(route.proxy)
    try:
        port = proxy.port or (443 if proxy.scheme == "https" else 80)
        sock = socket.create_connection((proxy.hostname, port), timeout=TIMEOUT)
        if proxy.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=proxy.hostname)
    except (OSError, ValueError) as error:
        raise ProxyRefused(
            "PROXY_UNREACHABLE",
            f"The proxy {address} (from {route.proxy_source or 'your environment'}) cannot be reached: {_reason(error)}.",
            {"proxy": address, "proxy from": route.proxy_source, "error": _reason(error)},
        ) from None
    return sock


def _open(route, host, port):
    """A socket to host:port as the SDK opens one: directly, or through the tunnel (CONNECT) its proxy opens."""
    if not route.proxy:
        return socket.create_connection((host, port), timeout=TIMEOUT)
    sock = _connect_proxy(route)
    proxy = urllib.parse.urlsplit(route.proxy)
    address, target = clean_url(route.proxy), f"{host}:{port}"
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    sent = bool(proxy.username)
    if sent:  # as requests does: the URL's user and password, unquoted, as Basic
        pair = urllib.parse.unquote(proxy.username) + ":" + urllib.parse.unquote(proxy.password or "")
        request += "Proxy-Authorization: Basic {}\r\n".format(
            base64.b64encode(pair.encode("latin-1", "replace")).decode()
        )
    evidence = {"proxy": address, "proxy from": route.proxy_source, "asked for": target, "credentials sent": sent}
    try:
        sock.sendall((request + "\r\n").encode("latin-1", "replace"))
        head = _read_head(sock)
    except OSError as error:
        sock.close()
        head, evidence["error"] = b"", _reason(error)
    if not head:
        sock.close()
        raise ProxyRefused(
            "PROXY_TUNNEL_FAILED",
            f"The proxy {address} closed the connection without answering the request to reach {target}.",
            dict(evidence, **{"status line": "(no answer)"}),
        )
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status_line = lines[0].strip()[:200]
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
    match = re.match(r"^HTTP/\d(?:\.\d)?\s+(\d{3})", status_line)
    code = int(match.group(1)) if match else 0
    if code == 200:
        return sock
    sock.close()
    evidence["status line"] = status_line
    if code == 407:
        schemes = _auth_schemes(headers)
        evidence["proxy asks for"] = schemes or None
        raise ProxyRefused(
            "PROXY_AUTH_REQUIRED",
            f"The proxy {address} answered `{status_line}` when asked to reach {target}: "
            + ("it refused the credentials it was given." if sent else "it wants credentials, and none were given."),
            evidence,
            _proxy_auth_remedy(route, schemes, sent),
        )
    if code == 403:
        raise ProxyRefused(
            "PROXY_BLOCKED",
            f"The proxy {address} answered `{status_line}` when asked to reach {target}: it blocks the registry.",
            evidence,
            f"Ask your network team to allow {target} through the proxy; if the registry is internal, add {host} "
            "to NO_PROXY instead.",
        )
    raise ProxyRefused(
        "PROXY_TUNNEL_FAILED",
        f"The proxy {address} answered `{status_line}` when asked to reach {target}.",
        evidence,
        f"The proxy could not reach {host}: check the endpoint's host name; if the registry is internal, add {host} "
        "to NO_PROXY; otherwise send this status line to your network team.",
    )


# --- certificates, read without trusting them --------------------------------------------------------------

NAME_FIELDS = {b"\x55\x04\x03": "CN", b"\x55\x04\x0a": "O", b"\x55\x04\x0b": "OU"}


def _der(data, index):
    """One DER element at `index`: (tag, contents, index after it)."""
    tag, length = data[index], data[index + 1]
    index += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[index : index + size], "big")
        index += size
    return tag, data[index : index + length], index + length


def _der_children(data):
    index = 0
    while index < len(data):
        tag, value, index = _der(data, index)
        yield tag, value


def _der_name(value):
    parts = []
    for _, relative in _der_children(value):
        for _, pair in _der_children(relative):
            fields = list(_der_children(pair))
            if len(fields) >= 2 and fields[0][1] in NAME_FIELDS:
                parts.append("{}={}".format(NAME_FIELDS[fields[0][1]], fields[1][1].decode("utf-8", "replace")))
    return ", ".join(parts) or "(no name)"


def certificate_names(der):
    """(issuer, subject) of a DER certificate, e.g. 'O=Example Corp, OU=Proxy CA': read, not verified."""
    try:
        _, certificate, _ = _der(der, 0)
        _, signed, _ = _der(certificate, 0)
        fields = list(_der_children(signed))
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        return _der_name(fields[2][1]), _der_name(fields[4][1])
    except (IndexError, ValueError):
        return "(unreadable)", "(unreadable)"


def _handshake(route, host, port, context):
    """(the presented certificate in DER, None) or (None, why the handshake failed)."""
    sock = _open(route, host, port)
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True), None
    except ssl.SSLCertVerificationError as error:
        return None, getattr(error, "verify_message", None) or str(error)
    except (ssl.SSLError, OSError) as error:
        return None, _reason(error)
    finally:
        sock.close()


def inspect_tls(route, host, port):
    """Who issued the certificate presented for host (read without trusting it), and which stores trust it."""
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    der, _ = _handshake(route, host, port, unverified)
    if der is None:
        return None
    issuer, subject = certificate_names(der)
    sdk_der, sdk_error = _handshake(route, host, port, route.context())
    system_der, system_error = _handshake(route, host, port, ssl.create_default_context())
    return {
        "certificate issuer": issuer,
        "certificate subject": subject,
        "certificate sha256": hashlib.sha256(der).hexdigest(),
        "trusted by the SDK": sdk_der is not None,
        "SDK verdict": sdk_error or "trusted",
        "trusted by the system": system_der is not None,
        "system verdict": system_error or "trusted",
    }


def system_distrust(route, url):
    """Why the system's CAs refuse the certificate the SDK just accepted over HTTPS; None when they trust it too."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or route.verify is False:
        return None
    try:
        der, error = _handshake(route, parts.hostname or "", parts.port or 443, ssl.create_default_context())
    except (ProxyRefused, OSError):
        return None
    return error if der is None and error and "certificate" in error.lower() else None


def public_issuer(issuer):
    return any(name.lower() in issuer.lower() for name in PUBLIC_CAS)


def _system_ca():
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def _bundle_remedy(env, route, extra, extra_file):
    default = route.default_ca or "$(python -m certifi)"
    remedy = (
        f"Make a bundle of the SDK's CAs plus {extra}: `cat {default} {extra_file} > {CA_BUNDLE_TARGET}`, then "
        f"`export REQUESTS_CA_BUNDLE={CA_BUNDLE_TARGET}` (requests, the HTTP stack of MLflow's client, reads it; "
        "set SSL_CERT_FILE to the same file for httpx"
    )
    if env.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        remedy += ", and MLFLOW_TRACKING_SERVER_CERT_PATH, which MLflow reads instead"
    return remedy + "). Do not turn verification off: that hands your API key to anyone on the path."


def connection_failure(name, env, url, error):
    """Why a fetch the SDK's way failed: the proxy's answer, TLS inspection, or else API_UNREACHABLE."""
    route = sdk_route(env, url)
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    reason = _reason(error)
    evidence = {"url": clean_url(url), "error": reason, "route": route.describe(), "judged by": route.judged_by}
    if route.proxy and route.proxy_scheme not in ("http", "https"):
        evidence["note"] = f"the doctor cannot probe through a {route.proxy_scheme} proxy"
        return Check(name, FAIL, "API_UNREACHABLE", f"{clean_url(url)}: {reason}.", evidence=evidence)
    tls = None
    try:
        if parts.scheme == "https":
            tls = inspect_tls(route, host, port)
        elif route.proxy:
            _connect_proxy(route).close()
    except ProxyRefused as refused:
        evidence.pop("error")
        evidence.update((k, v) for k, v in refused.evidence.items() if v is not None)
        return Check(name, FAIL, refused.cause, refused.message, remedy=refused.remedy, evidence=evidence)
    except OSError:
        tls = None
    evidence.update(tls or {})
    if not tls or tls["trusted by the SDK"]:
        return Check(name, FAIL, "API_UNREACHABLE", f"{clean_url(url)}: {reason}.", evidence=evidence)
    issuer, via = tls["certificate issuer"], (f" (through the proxy {clean_url(route.proxy)})" if route.proxy else "")
    trusts = route.ca or "the system's CAs"
    if tls["trusted by the system"]:
        system = _system_ca()
        remedy = _bundle_remedy(env, route, "your system's", system or "<your system's CA file>")
        return Check(
            name,
            FAIL,
            "TLS_TRUSTED_BY_SYSTEM_ONLY",
            f"{host} presents a certificate issued by {issuer}{via}: your system's CAs trust it, but the SDK's HTTP "
            f"stack ({route.judged_by}, trusting {trusts}) does not: {tls['SDK verdict']}.",
            remedy=remedy,
            evidence=evidence,
        )
    if route.proxy or not public_issuer(issuer):
        remedy = _bundle_remedy(
            env, route, f"your company's CA (the issuer {issuer}: ask IT for it as a PEM file)", "company-ca.pem"
        )
        return Check(
            name,
            FAIL,
            "TLS_INSPECTED",
            f"{host} presents a certificate issued by {issuer}{via}, not by a public CA: your network inspects TLS. "
            f"The SDK's HTTP stack ({route.judged_by}, trusting {trusts}) does not trust it: "
            f"{tls['SDK verdict']}.",
            remedy=remedy,
            evidence=evidence,
        )
    return Check(name, FAIL, "API_UNREACHABLE", f"{clean_url(url)}: {reason}.", evidence=evidence)


def _proxy_check(name, env, answer, url):
    """A proxy answered for the registry (plain HTTP: 407, a block page): its cause, else None."""
    if not answer.via_proxy:
        return None
    route = sdk_route(env, url)
    proxy = clean_url(route.proxy)
    evidence = {"status": answer.status, "proxy": proxy, "proxy from": route.proxy_source, "body": answer.body[:200]}
    if answer.status == 407:
        schemes = _auth_schemes(answer.headers.items())
        sent = bool(urllib.parse.urlsplit(route.proxy).username)
        evidence.update({"proxy asks for": schemes or None, "credentials sent": sent})
        return Check(
            name,
            FAIL,
            "PROXY_AUTH_REQUIRED",
            f"The proxy {proxy} answered 407 for {clean_url(url)}: "
            + ("it refused the credentials it was given." if sent else "it wants credentials, and none were given."),
            remedy=_proxy_auth_remedy(route, schemes, sent),
            evidence=evidence,
        )
    looks_html = "html" in answer.headers.get("Content-Type", "").lower() or answer.body.lstrip()[:1] == "<"
    if (looks_html and answer.status != 200) or (name == "health" and looks_html):
        return Check(
            name,
            FAIL,
            "PROXY_INTERCEPTS",
            f"The proxy {proxy} answered {answer.status} for {clean_url(url)} instead of the registry.",
            evidence=evidence,
        )
    return None


def network_checks(env):
    checks = []
    base = env.tracking_uri
    health_url = base + "/health"
    route = sdk_route(env, health_url)
    if route.proxy and route.proxy_scheme not in ("http", "https"):  # SOCKS: the standard library cannot speak it
        socks = "" if env.version("pysocks") else " PySocks is not installed here: requests will refuse the proxy."
        return [
            Check(
                name,
                SKIP,
                "SKIPPED",
                f"The SDK goes {route.describe()}; the doctor cannot probe through a {route.proxy_scheme} proxy.{socks}",
                evidence={"route": route.describe(), "judged by": route.judged_by},
            )
            for name in ("health", "server version", "authenticated read")
        ]
    try:
        answer = fetch(env, health_url)
    except (urllib.error.URLError, OSError, ValueError, ssl.SSLError) as error:
        failure = connection_failure("health", env, health_url, error)
        if failure.cause == "API_UNREACHABLE" and "certificate" in failure.message:
            if env.environ.get("REQUESTS_CA_BUNDLE"):  # published: a partial bundle the SDK reads
                failure.cause = "CA_BUNDLE_PARTIAL"
                failure.remedy = CAUSES["CA_BUNDLE_PARTIAL"][1]
        checks.append(failure)
        checks += [
            Check(name, SKIP, "SKIPPED", "The registry is unreachable.")
            for name in ("server version", "authenticated read")
        ]
        return checks
    intercepted = _proxy_check("health", env, answer, health_url)
    if intercepted:
        return (
            checks
            + [intercepted]
            + [
                Check(n, SKIP, "SKIPPED", "A proxy answers instead of the registry.")
                for n in ("server version", "authenticated read")
            ]
        )
    if answer.status != 200:
        checks.append(
            Check(
                "health",
                FAIL,
                "API_UNREACHABLE",
                f"{clean_url(health_url)} answered {answer.status}.",
                evidence={"status": answer.status, "body": answer.body[:200]},
            )
        )
    else:
        evidence = {"route": route.describe(), "judged by": route.judged_by}
        message = f"{clean_url(health_url)} answers ({route.describe()})."
        system_error = system_distrust(route, health_url)
        if system_error:  # the SDK's CAs trust it, the system's do not: say which one the SDK uses
            evidence.update(
                {"trusted by the SDK": True, "trusted by the system": False, "system verdict": system_error}
            )
            message += (
                f" The SDK trusts its certificate (with {route.ca}); your system's CAs do not ({system_error}): "
                "tools on the standard library (pip, urllib) will fail where the SDK works."
            )
        checks.append(ok("health", message, evidence))

    key = env.key
    local = env.version("mlflow")
    try:
        version_answer = fetch(env, base + "/version", key)
        server = version_answer.body.strip() if version_answer.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        server = None
    if server and not re.match(r"^\d+\.\d+", server):
        server = None
    if not server:
        checks.append(Check("server version", SKIP, "SKIPPED", "The registry did not say its mlflow version."))
    elif not local:
        checks.append(
            Check(
                "server version",
                SKIP,
                "SKIPPED",
                f"The registry runs mlflow {server}; yours is not installed.",
                evidence={"server": server},
            )
        )
    elif version_tuple(local)[:2] != version_tuple(server)[:2]:
        checks.append(
            Check(
                "server version",
                WARN,
                "CLIENT_SERVER_VERSION_SKEW",
                f"Your mlflow is {local}; the registry runs {server}.",
                remedy=f"Install the registry's version: `python -m pip install 'mlflow=={server}'`.",
                evidence={"client": local, "server": server},
            )
        )
    else:
        checks.append(
            ok(
                "server version",
                f"Your mlflow {local} matches the registry's {server}.",
                {"client": local, "server": server},
            )
        )

    if not key:
        checks.append(Check("authenticated read", SKIP, "SKIPPED", "No API key to try."))
        return checks
    read_url = base + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        answer = fetch(env, read_url, key.strip())
    except (urllib.error.URLError, OSError, ValueError, ssl.SSLError) as error:
        checks.append(connection_failure("authenticated read", env, read_url, error))
        return checks
    intercepted = _proxy_check("authenticated read", env, answer, read_url)
    if intercepted:
        checks.append(intercepted)
        return checks
    code = ""
    try:
        code = json.loads(answer.body).get("error_code", "")
    except (ValueError, AttributeError):
        pass
    evidence = {"status": answer.status, "error_code": code or None, "key": describe_secret(key, env.key_sources[0][0])}
    if answer.status in (401, 403):
        message = {
            401: f"The registry does not know this key, or it is revoked or expired (401 {code}).",
            403: f"The registry refused this key (403 {code}).",
        }[answer.status]
        if code == "REGISTRY_ADMIN_REQUIRED":
            message = "The key is valid, but registry access is limited to admin keys (403 REGISTRY_ADMIN_REQUIRED)."
            remedy = "Ask Hokusai support to grant registry access to your key or account."
        else:
            remedy = None
        checks.append(Check("authenticated read", FAIL, "API_KEY_REJECTED", message, remedy=remedy, evidence=evidence))
    elif answer.status != 200:
        checks.append(
            Check(
                "authenticated read", FAIL, "API_UNREACHABLE", f"The read answered {answer.status}.", evidence=evidence
            )
        )
    else:
        checks.append(
            ok("authenticated read", f"The registry accepted the key (fingerprint {fingerprint(key)}).", evidence)
        )
    return checks


# --- running ---------------------------------------------------------------------------------------


def run_checks(env, network):
    checks, crashed = [], False
    for function in OFFLINE_CHECKS + ([network_checks] if network else []):
        name = function.__name__.replace("check_", "").replace("_", " ")
        try:
            result = function(env)
        except Exception as error:  # noqa: BLE001 - one broken check must not hide the others
            crashed = True
            result = Check(
                name,
                FAIL,
                "DOCTOR_CRASHED",
                f"{type(error).__name__}: {error}",
                evidence={"traceback": traceback.format_exc(limit=4)},
            )
        checks.extend(result if isinstance(result, list) else [result])
    return checks, crashed


def report(env, network):
    checks, crashed = run_checks(env, network)
    return {
        "schema": SCHEMA,
        "doctor_version": DOCTOR_VERSION,
        "ok": not any(check.status == FAIL for check in checks),
        "network": bool(network),
        "facts": SCRUB.value(env.facts()),
        "checks": [check.as_dict() for check in checks],
    }, crashed


def human(result):
    lines = ["Hokusai doctor {} (Python {})".format(result["doctor_version"], result["facts"]["python"]["version"])]
    width = max(len(c["name"]) for c in result["checks"])
    for check in result["checks"]:
        lines.append(f"{check['status'].upper():<4}  {check['name']:<{width}}  {check['message']}")
        if check["status"] in (FAIL, WARN):
            lines.append(f"      {'':<{width}}  cause {check['cause']}")
            if check["remedy"]:
                lines.append(f"      {'':<{width}}  fix: {check['remedy']}")
    failed = sum(c["status"] == FAIL for c in result["checks"])
    warned = sum(c["status"] == WARN for c in result["checks"])
    lines.append("")
    lines.append(
        f"{failed} failed, {warned} warnings. " + ("" if result["network"] else "Add --network to probe the registry.")
    )
    lines.append("Paste `python hokusai_doctor.py --json` into the Hokusai portal to share this with support.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hokusai_doctor.py", description="Diagnose your Hokusai SDK setup.")
    parser.add_argument("--json", action="store_true", help=f"print the report as JSON ({SCHEMA})")
    parser.add_argument("--network", action="store_true", help="also probe the registry with your key")
    parser.add_argument("--version", action="version", version="hokusai-doctor " + DOCTOR_VERSION)
    args = parser.parse_args(argv)
    try:
        result, crashed = report(Environment(), args.network)
        output = json.dumps(result, indent=2, sort_keys=False) if args.json else human(result)
        sys.stdout.write(SCRUB.text(output) + "\n")
    except Exception:  # noqa: BLE001
        sys.stderr.write("hokusai doctor: internal error (please send this to Hokusai support):\n")
        sys.stderr.write(SCRUB.text(traceback.format_exc()) + "\n")
        return 2
    if crashed:
        return 2
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
