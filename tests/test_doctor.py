"""The environment doctor, as developers run it: the exact file the portal serves, run in a subprocess by a
throw-away virtualenv's Python (nothing of the test environment installed), under crafted environment
variables, home folders and config files. Where the real SDK or ML packages are too heavy to install, a
minimal distribution with the right metadata (METADATA, RECORD, direct_url.json) and an importable module
stands in. `--network` runs go to the real devstack registry (writer key, revoked key, a closed port); the
corporate network (proxies, TLS inspection) is in tests/test_doctor_corporate.py.

Every cause code has a test that produces it (checked by `test_every_cause_has_a_test_that_produces_it`),
and every run asserts no key, token or password it was given appears in what the doctor printed."""

import ast
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from devstack.server import free_port
from onboarding import environment
from tests.doctor_machine import KEY, OTHER_KEY, Machine

HERE = Path(__file__).resolve()


# --- the machine under test ------------------------------------------------------------------------------


def check(report: dict, name: str) -> dict:
    (found,) = [c for c in report["checks"] if c["name"] == name]
    return found


def assert_cause(report: dict, cause: str, status: str = "fail") -> dict:
    """The report has a check with this cause and status, a message and (unless it passed) a remedy."""
    matches = [c for c in report["checks"] if c["cause"] == cause]
    assert matches, f"no check with {cause}: {[(c['name'], c['cause']) for c in report['checks']]}"
    found = matches[0]
    assert found["status"] == status, found
    assert found["message"]
    assert found["remedy"] or cause == "OK"
    if status == "fail":
        assert report["ok"] is False
    return found


# --- the file itself ---------------------------------------------------------------------------------------


def test_the_served_file_runs_on_python_3_8_and_uses_only_the_standard_library(doctor_script):
    """vermin reads the code for the newest syntax and library calls it needs: 3.8 at most."""
    vermin = Path(sys.executable).parent / "vermin"
    result = subprocess.run(
        [str(vermin), "-t=3.8-", "--no-tips", "--violations", str(doctor_script)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tree = ast.parse(doctor_script.read_text(), feature_version=(3, 8))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_manage_py_doctor_script_prints_exactly_the_bytes_served_and_the_page_shows_their_sha256(alice):
    printed = subprocess.run(
        [sys.executable, "manage.py", "doctor_script"], capture_output=True, cwd=HERE.parent.parent, check=True
    ).stdout
    client = Client()
    served = client.get("/onboarding/doctor/hokusai_doctor.py")  # no session: a curl in a terminal
    assert served.status_code == 200
    assert served["Content-Disposition"] == 'attachment; filename="hokusai_doctor.py"'
    assert served.content == printed
    digest = hashlib.sha256(printed).hexdigest()
    client.force_login(alice)
    page = client.get("/onboarding/environment/").content.decode()
    assert f'data-testid="doctor-sha256">{digest}<' in page
    assert f'echo "{digest}  hokusai_doctor.py" | sha256sum -c -' in page
    assert "http://testserver/onboarding/doctor/hokusai_doctor.py" in page


def test_the_portal_writes_its_sdk_build_into_the_served_file(settings):
    settings.HOKUSAI_SDK_COMMIT = "feedface" * 5
    script = environment.doctor_script()
    assert b'EXPECTED_SDK_COMMIT = "' + b"feedface" * 5 + b'"' in script.content
    assert script.sha256 == hashlib.sha256(script.content).hexdigest()


def test_every_cause_has_a_message_a_remedy_and_a_test_that_produces_it():
    causes = set(environment.CAUSES) - {"OK"}
    for cause in causes:
        message, remedy = environment.CAUSES[cause]
        assert message and remedy, cause
    produced = {
        node.args[1].value
        for source in (HERE.read_text(), (HERE.parent / "test_doctor_corporate.py").read_text())
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "assert_cause" and len(node.args) > 1
        if isinstance(node.args[1], ast.Constant)
    }
    assert causes - produced == set(), f"causes no test produces: {sorted(causes - produced)}"


# --- exit status and output ------------------------------------------------------------------------------


def test_a_healthy_machine_passes_every_offline_check_and_exits_0(machine):
    machine.healthy()
    report = machine.report()
    assert report["schema"] == "hokusai.doctor/v1"
    assert report["ok"] is True
    assert {c["status"] for c in report["checks"]} <= {"pass", "skip"}, [
        (c["name"], c["cause"], c["message"]) for c in report["checks"] if c["status"] not in ("pass", "skip")
    ]
    assert check(report, "sdk")["cause"] == "OK"
    assert report["facts"]["api_key"] == {
        "set": True,
        "source": "HOKUSAI_API_KEY",
        "length": len(KEY),
        "prefix": "hk_test_",
        "fingerprint": hashlib.sha256(KEY.encode()).hexdigest()[:8],
    }
    machine.run(expect_rc=0)


def test_human_output_is_one_line_per_check_with_the_fix_under_a_failure_and_exit_1(machine):
    result = machine.run(expect_rc=1)
    lines = result.stdout.splitlines()
    failing = [i for i, line in enumerate(lines) if line.startswith("FAIL")]
    assert failing
    sdk_line = next(i for i, line in enumerate(lines) if line.startswith("FAIL") and " sdk " in line)
    assert "cause SDK_NOT_INSTALLED" in lines[sdk_line + 1]
    assert "fix: Run `python -m pip install 'hokusai-ml-platform[ml]'`" in lines[sdk_line + 2]
    assert any(line.startswith("PASS  python") for line in lines)


def test_the_doctor_itself_breaking_exits_2_and_still_reports_the_other_checks(doctor_script, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("served_doctor", doctor_script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def check_explodes(env):
        raise KeyError("boom")

    monkeypatch.setattr(module, "OFFLINE_CHECKS", [module.check_python, check_explodes, module.check_mock_mode])
    assert module.main(["--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert_cause(report, "DOCTOR_CRASHED")
    assert [c["name"] for c in report["checks"]] == ["python", "explodes", "mock mode"]


def test_a_usage_error_exits_2(machine):
    assert machine.run("--no-such-flag").returncode == 2


# --- Python and the SDK ---------------------------------------------------------------------------------


def test_python_older_than_the_sdk_requires(machine):
    machine.install_sdk(requires_python=">=3.99")
    found = assert_cause(machine.report(), "PYTHON_UNSUPPORTED")
    assert found["evidence"]["requires"] == ">=3.99"


def test_sdk_not_installed(machine):
    assert_cause(machine.report(), "SDK_NOT_INSTALLED")


def test_artsys_hokusai_package_collides_with_the_sdk(machine):
    machine.install_sdk()
    machine.install("hokusai", "0.5.23", modules={})  # Artsy's: same top-level name, another project
    found = assert_cause(machine.report(), "HOKUSAI_NAME_COLLISION")
    assert found["evidence"]["other distributions named hokusai"] == ["hokusai"]


def test_a_local_hokusai_folder_shadows_the_installed_sdk(machine):
    machine.install_sdk()
    local = machine.script.parent / "hokusai"
    local.mkdir(exist_ok=True)
    (local / "__init__.py").write_text("")
    try:
        found = assert_cause(machine.report(), "HOKUSAI_NAME_COLLISION")
        assert "hokusai/__init__.py" in found["message"]
    finally:
        (local / "__init__.py").unlink()
        local.rmdir()


def test_sdk_built_from_another_commit_than_the_portal_names(machine, settings, tmp_path):
    settings.HOKUSAI_SDK_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
    machine.script = tmp_path / "hokusai_doctor.py"
    machine.script.write_bytes(environment.doctor_script().content)
    machine.install_sdk(commit="0123456789abcdef0123456789abcdef01234567")
    found = assert_cause(machine.report(), "SDK_BUILD_STALE", status="warn")
    assert found["evidence"]["commit"].startswith("0123456789ab")
    assert found["evidence"]["url"] == "https://github.com/hokusai/hokusai-data-pipeline.git"  # no token, no query


def test_sdk_from_the_current_commit_passes_the_build_check(machine, settings, tmp_path):
    settings.HOKUSAI_SDK_COMMIT = "0123456789ab"
    machine.script = tmp_path / "hokusai_doctor.py"
    machine.script.write_bytes(environment.doctor_script().content)
    machine.install_sdk(commit="0123456789abcdef0123456789abcdef01234567")
    assert check(machine.report(), "sdk build")["status"] == "pass"


def test_ml_extra_missing(machine):
    machine.install_sdk()
    found = assert_cause(machine.report(), "ML_EXTRA_MISSING")
    assert "mlflow" in found["evidence"]["missing"]


def test_ml_extra_version_conflict(machine):
    machine.install_sdk()
    machine.install_ml(mlflow="2.19.0")
    found = assert_cause(machine.report(), "ML_EXTRA_VERSION_CONFLICT")
    assert found["evidence"]["conflicts"] == {"mlflow": "2.19.0 installed, >=3.9.0 required"}


def test_the_real_import_error_behind_missing_ml_extra(machine):
    """What the SDK calls MissingMLExtraError is, here, a dependency mlflow cannot import: the doctor shows it."""
    machine.install_sdk()
    machine.install_ml(mlflow_code="import sqlalchemy_is_not_installed_here\n")
    found = assert_cause(machine.report(), "ML_IMPORT_MASKED")
    assert "No module named 'sqlalchemy_is_not_installed_here'" in found["message"]


def test_dependency_conflict_with_the_sdks_base_requirements(machine):
    machine.healthy()
    (machine.site / "pydantic-2.5.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pydantic\nVersion: 1.10.13\n"
    )
    found = assert_cause(machine.report(), "DEPENDENCY_CONFLICT")
    assert "hokusai-ml-platform requires pydantic>=2.0, but pydantic 1.10.13 is installed" in found["message"]


def test_the_active_virtualenv_is_not_the_python_running(machine, tmp_path):
    machine.healthy()
    machine.set(VIRTUAL_ENV=str(tmp_path / "another-venv"))
    found = assert_cause(machine.report(), "INTERPRETER_MISMATCH", status="warn")
    assert "another-venv" in found["message"]


def test_pip_on_the_path_belongs_to_another_python(machine, tmp_path):
    machine.healthy()
    folder = tmp_path / "otherbin"
    folder.mkdir()
    pip = folder / "pip"
    pip.write_text("#!/usr/bin/python3\nimport sys\n")
    pip.chmod(0o755)
    machine.env["PATH"] = f"{folder}:{machine.env['PATH']}"
    found = assert_cause(machine.report(), "INTERPRETER_MISMATCH", status="warn")
    assert "`pip` on your PATH belongs to /usr/bin/python3" in found["message"]


# --- the key and its sources ------------------------------------------------------------------------------


def test_no_key_anywhere(machine):
    machine.healthy()
    del machine.env["HOKUSAI_API_KEY"]
    assert_cause(machine.report(), "API_KEY_MISSING")


def test_mlflow_token_set_without_a_hokusai_key(machine):
    machine.install_sdk()
    machine.set(MLFLOW_TRACKING_TOKEN=KEY)
    report = machine.report()
    found = assert_cause(report, "MLFLOW_TOKEN_WITHOUT_HOKUSAI_KEY")
    assert found["evidence"]["MLFLOW_TRACKING_TOKEN"]["fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:8]


def test_environment_key_and_config_file_disagree(machine):
    machine.healthy()
    machine.write("home/.hokusai/config", f"[default]\napi_key = {OTHER_KEY}\n", secret=OTHER_KEY)
    found = assert_cause(machine.report(), "ENV_TOKEN_SHADOWED", status="warn")
    sources = {s["source"]: s["fingerprint"] for s in found["evidence"]["sources"]}
    assert sources == {
        "HOKUSAI_API_KEY": hashlib.sha256(KEY.encode()).hexdigest()[:8],
        "~/.hokusai/config": hashlib.sha256(OTHER_KEY.encode()).hexdigest()[:8],
    }


def test_the_key_from_a_config_file_in_the_working_folder_is_used_when_no_variable_is_set(machine):
    machine.install_sdk()
    machine.write("work/hokusai.ini", f"[hokusai]\napi_key = {KEY}\n", secret=KEY)
    report = machine.report()
    assert report["facts"]["api_key"]["source"] == "./hokusai.ini"
    assert check(report, "api key")["status"] == "pass"


def test_basic_auth_variables_shadow_the_token(machine):
    machine.healthy()
    machine.set(MLFLOW_TRACKING_USERNAME="alice", MLFLOW_TRACKING_PASSWORD="s3cret-pa55word")
    found = assert_cause(machine.report(), "BASIC_AUTH_SHADOWS_TOKEN")
    assert found["evidence"]["MLFLOW_TRACKING_PASSWORD"] == "set"


def test_an_mlflow_credentials_file_shadows_the_token(machine):
    machine.healthy()
    machine.write(
        "home/.mlflow/credentials",
        "[mlflow]\nmlflow_tracking_username = alice\nmlflow_tracking_password = hunter2-hunter2\n",
        secret="hunter2-hunter2",
    )
    found = assert_cause(machine.report(), "BASIC_AUTH_SHADOWS_TOKEN")
    assert "~/.mlflow/credentials" in found["evidence"]


def test_endpoint_in_the_typescript_sdks_variable(machine):
    machine.healthy()
    machine.set(HOKUSAI_API_BASE_URL="https://registry.example.org/api")
    assert_cause(machine.report(), "ENDPOINT_VAR_MISNAMED", status="warn")


def test_tracking_uri_not_under_the_endpoint(machine):
    machine.healthy()
    machine.set(MLFLOW_TRACKING_URI="https://user:pw@registry.hokus.ai/mlflow?token=abc")
    found = assert_cause(machine.report(), "TRACKING_URI_NONCANONICAL", status="warn")
    assert found["evidence"]["MLFLOW_TRACKING_URI"] == "https://registry.hokus.ai/mlflow"  # no credentials, no query


def test_mock_mode(machine):
    machine.healthy()
    machine.set(HOKUSAI_MOCK_MODE="true")
    assert_cause(machine.report(), "MOCK_MODE_ENABLED")


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (f'"{KEY}"', "wrapped in quotes"),
        ("hk_test_short", "are not 32 to 40"),
        ("sk-" + "x" * 40, "does not start with hk_"),
        (f"Bearer {KEY}", "Authorization scheme"),
    ],
)
def test_malformed_key(machine, key, why):
    machine.healthy()
    machine.set(HOKUSAI_API_KEY=key)
    found = assert_cause(machine.report(), "KEY_MALFORMED")
    assert why in found["message"]


# --- TLS ------------------------------------------------------------------------------------------------


def test_ca_bundle_variable_names_a_missing_file(machine):
    machine.healthy()
    machine.set(REQUESTS_CA_BUNDLE="/nonexistent/corp-ca.pem")
    found = assert_cause(machine.report(), "CA_BUNDLE_MISSING")
    assert "REQUESTS_CA_BUNDLE names /nonexistent/corp-ca.pem" in found["message"]


def test_the_ca_variable_mlflow_never_reads(machine, tmp_path):
    machine.healthy()
    machine.set(MLFLOW_TRACKING_CA_BUNDLE_PATH=str(tmp_path))
    found = assert_cause(machine.report(), "CA_BUNDLE_MISSING")
    assert "MLflow never reads it" in found["message"]


def test_ca_bundle_without_a_certificate(machine):
    machine.healthy()
    bundle = machine.write("work/corp.pem", "this is not a certificate\n")
    machine.set(REQUESTS_CA_BUNDLE=str(bundle))
    assert_cause(machine.report(), "CA_BUNDLE_PARTIAL")


def test_ca_bundle_with_only_the_proxys_certificate(machine, tmp_path):
    machine.healthy()
    pem = tmp_path / "corp-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem")]
        + ["-out", str(pem), "-days", "2", "-subj", "/CN=Corp Inspecting Proxy CA"],
        check=True,
        capture_output=True,
    )
    machine.set(SSL_CERT_FILE=str(pem))
    found = assert_cause(machine.report(), "CA_BUNDLE_PARTIAL", status="warn")
    assert "SSL_CERT_FILE holds 1 certificate(s)" in found["message"]


def test_tls_verification_turned_off(machine):
    machine.healthy()
    machine.set(MLFLOW_TRACKING_INSECURE_TLS="true")
    assert_cause(machine.report(), "TLS_VERIFY_DISABLED", status="warn")


# --- --network, against the devstack --------------------------------------------------------------------


def on_devstack(machine: Machine, url: str, key: str) -> None:
    machine.healthy()
    machine.set(HOKUSAI_API_KEY=key, HOKUSAI_API_ENDPOINT=url, MLFLOW_TRACKING_URI=url)


def test_network_with_the_writer_key_reads_the_registry(machine, devstack, devstack_keys):
    on_devstack(machine, devstack.url, devstack_keys["writer"])
    report = machine.report("--network")
    assert check(report, "health")["status"] == "pass"
    assert check(report, "authenticated read")["status"] == "pass"
    assert report["network"] is True


def test_network_with_a_revoked_key(machine, devstack, devstack_keys):
    on_devstack(machine, devstack.url, devstack_keys["revoked"])
    found = assert_cause(machine.report("--network"), "API_KEY_REJECTED")
    assert found["evidence"]["status"] == 401
    assert found["evidence"]["error_code"] == "INVALID_API_KEY"


def test_network_to_a_closed_port(machine):
    url = f"http://127.0.0.1:{free_port()}"
    on_devstack(machine, url, KEY)
    found = assert_cause(machine.report("--network"), "API_UNREACHABLE")
    assert "connection refused" in found["message"]


def test_client_and_server_mlflow_versions_differ(machine, devstack, devstack_keys):
    on_devstack(machine, devstack.url, devstack_keys["writer"])
    import mlflow  # the devstack runs this one

    major, minor = (int(part) for part in mlflow.__version__.split(".")[:2])
    skewed = f"{major}.{minor - 1 if minor else minor + 1}.0"
    (machine.site / "mlflow-3.9.0.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: mlflow\nVersion: {skewed}\n"
    )
    found = assert_cause(machine.report("--network"), "CLIENT_SERVER_VERSION_SKEW", status="warn")
    assert found["evidence"] == {"client": skewed, "server": mlflow.__version__}
    assert f"mlflow=={mlflow.__version__}" in found["remedy"]


def test_no_secret_in_any_output_with_every_source_set(machine, devstack, devstack_keys):
    """Every key source, a token, a password and a proxy with credentials at once, human and JSON output:
    none of their values is printed (Machine.run asserts it on every run of this file)."""
    on_devstack(machine, devstack.url, devstack_keys["writer"])
    machine.write("home/.hokusai/config", f"api_key={OTHER_KEY}\n", secret=OTHER_KEY)
    machine.write("work/.hokusai", KEY + "\n", secret=KEY)
    machine.set(
        MLFLOW_TRACKING_TOKEN=devstack_keys["reader"],
        MLFLOW_TRACKING_PASSWORD="pa55-w0rd-value",
        HTTPS_PROXY="http://u:proxy-secret-value@127.0.0.1:9",
    )
    machine.secrets.append("proxy-secret-value")
    for args in ([], ["--json"], ["--network"], ["--network", "--json"]):
        output = machine.run(*args).stdout
        assert "hk_test_" in output or "hk_live_" in output or "fingerprint" in output
        assert str(machine.home) not in output  # the home folder is ~


def test_readme_lists_exactly_the_doctors_causes():
    readme = (HERE.parent.parent / "README.md").read_text()
    section = readme.split("#### Doctor causes", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"^\| `([A-Z][A-Z_]+)` \|", section, re.M))
    assert listed == set(environment.CAUSES) - {"OK"}
