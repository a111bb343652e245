"""The environment doctor on a corporate network, as a developer runs it (`--network --json`, in a subprocess,
see tests/doctor_machine.py): a real local proxy (tests/corporate_proxy.py) stands in for the company's,
refusing the tunnel with 407, 403, 502 or a closed connection, serving a block page, or inspecting TLS with a
throw-away CA (trustme) that presents a certificate for the registry's public name. Behind it, the devstack
stands in for the registry, so no case needs the internet.

The SDK's HTTP stack is the real requests, linked into the machine (`Machine.install_http_stack`): the doctor
asks it how it would connect. Every corporate-network cause (PROXY_*, TLS_*) has a case in CASES; the case
list is generated from the doctor's causes table, so a new one without a case fails. Every run asserts the
cause, the exit status, and that no key or proxy credential appears in what the doctor printed."""

import importlib.util
import json
import os
import subprocess
import urllib.request
from pathlib import Path

import certifi
import pytest
import requests
import trustme
from django.test import Client

from devstack.server import free_port
from onboarding import environment
from onboarding.models import EnvironmentReport
from tests.corporate_proxy import CorporateProxy
from tests.doctor_machine import Machine
from tests.test_doctor import assert_cause, check

REGISTRY = "https://registry.hokus.ai"  # its public name: only the proxy "resolves" it (to the devstack)
PROXY_USER, PROXY_PASSWORD = "corp-user", "Pr0xy-pa55word!"


def behind(machine: Machine, devstack, devstack_keys, *, registry: str = REGISTRY) -> None:
    """A healthy developer's machine with the real requests, the writer key, pointed at the registry."""
    machine.healthy()
    machine.install_http_stack()
    machine.set(HOKUSAI_API_KEY=devstack_keys["writer"], HOKUSAI_API_ENDPOINT=registry, MLFLOW_TRACKING_URI=registry)
    machine.secrets += [PROXY_USER, PROXY_PASSWORD]  # credentials are masked: neither part is ever printed


def upstream(devstack) -> tuple[str, int]:
    host, port = devstack.url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def run_network(machine: Machine, expect_rc: int) -> dict:
    return json.loads(machine.run("--network", "--json", expect_rc=expect_rc).stdout)


def company_bundle(machine: Machine, proxy: CorporateProxy, extra: Path) -> Path:
    """The fix the doctor prints: the SDK's CAs (certifi's, as requests uses) plus the company's CA."""
    bundle = machine.home / ".hokusai" / "ca-bundle.pem"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(Path(certifi.where()).read_bytes() + extra.read_bytes())
    return bundle


# --- each cause, with the proxy that produces it ------------------------------------------------------------


def case_proxy_auth_required(machine, devstack, devstack_keys, tmp_path):
    """407 to the tunnel: named proxy (no credentials in it), status line, and how requests takes credentials.
    Wrong credentials: said to be refused. Right ones (and the company CA): the read goes through."""
    credentials = f"{PROXY_USER}:{PROXY_PASSWORD}"
    with CorporateProxy("auth", upstream=upstream(devstack), credentials=credentials, then="inspect") as proxy:
        behind(machine, devstack, devstack_keys)
        machine.set(HTTPS_PROXY=proxy.url())
        found = assert_cause(run_network(machine, 1), "PROXY_AUTH_REQUIRED")
        assert f"The proxy http://127.0.0.1:{proxy.port}" in found["message"]
        assert "HTTP/1.1 407 Proxy Authentication Required" in found["message"]
        assert "none were given" in found["message"]
        assert found["evidence"]["proxy asks for"] == "Basic"
        assert found["evidence"]["credentials sent"] is False
        assert "in HTTPS_PROXY: `user:password@` before the proxy's host" in found["remedy"]

        machine.set(HTTPS_PROXY=proxy.url(PROXY_USER, "not-the-password"))
        machine.secrets.append("not-the-password")
        found = assert_cause(run_network(machine, 1), "PROXY_AUTH_REQUIRED")
        assert "refused the credentials" in found["message"]
        assert found["evidence"]["credentials sent"] is True
        assert proxy.authorizations[-1] is not None  # they were sent, as requests sends them: Basic

        machine.set(HTTPS_PROXY=proxy.url(PROXY_USER, PROXY_PASSWORD))
        machine.set(REQUESTS_CA_BUNDLE=str(company_bundle(machine, proxy, Path(proxy.write_ca(tmp_path / "ca.pem")))))
        report = run_network(machine, 0)
        assert check(report, "authenticated read")["status"] == "pass"


def case_proxy_auth_required_over_plain_http(machine, devstack, devstack_keys, tmp_path):
    """A plain-HTTP registry: the proxy's 407 arrives as an answer, and is the same cause."""
    with CorporateProxy("auth", upstream=upstream(devstack), credentials="a:b") as proxy:
        behind(machine, devstack, devstack_keys, registry="http://registry.internal.example")
        machine.set(HTTP_PROXY=proxy.url(PROXY_USER, PROXY_PASSWORD))
        found = assert_cause(run_network(machine, 1), "PROXY_AUTH_REQUIRED")
        assert found["evidence"]["status"] == 407
        assert "refused the credentials it was given" in found["message"]


def case_proxy_blocked(machine, devstack, devstack_keys, tmp_path):
    with CorporateProxy("block", upstream=upstream(devstack)) as proxy:
        behind(machine, devstack, devstack_keys)
        machine.set(https_proxy=proxy.url(PROXY_USER, PROXY_PASSWORD))  # lower case: read all the same
        found = assert_cause(run_network(machine, 1), "PROXY_BLOCKED")
        assert found["evidence"]["status line"] == "HTTP/1.1 403 Forbidden"
        assert found["evidence"]["proxy from"] == "https_proxy"
        assert "registry.hokus.ai:443" in found["message"]
        assert "allow registry.hokus.ai:443" in found["remedy"] and "NO_PROXY" in found["remedy"]
        assert all(line.startswith("CONNECT registry.hokus.ai:443 ") for line in proxy.requests), proxy.requests


def case_proxy_tunnel_failed(machine, devstack, devstack_keys, tmp_path):
    behind(machine, devstack, devstack_keys)
    for mode, said in (("bad_gateway", "HTTP/1.1 502 Bad Gateway"), ("close", "(no answer)")):
        with CorporateProxy(mode, upstream=upstream(devstack)) as proxy:
            machine.set(HTTPS_PROXY=proxy.url())
            found = assert_cause(run_network(machine, 1), "PROXY_TUNNEL_FAILED")
            assert found["evidence"]["status line"] == said
            assert f"http://127.0.0.1:{proxy.port}" in found["message"]


def case_proxy_unreachable(machine, devstack, devstack_keys, tmp_path):
    behind(machine, devstack, devstack_keys)
    port = free_port()
    machine.set(HTTPS_PROXY=f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}")
    found = assert_cause(run_network(machine, 1), "PROXY_UNREACHABLE")
    assert (
        f"The proxy http://127.0.0.1:{port} (from HTTPS_PROXY) cannot be reached: connection refused"
        in (found["message"])
    )


def case_proxy_intercepts(machine, devstack, devstack_keys, tmp_path):
    """A block page served for a plain-HTTP registry; NO_PROXY (the remedy for an internal registry) fixes it."""
    with CorporateProxy("block", upstream=upstream(devstack)) as proxy:
        behind(machine, devstack, devstack_keys, registry=devstack.url)
        machine.set(HTTP_PROXY=proxy.url())
        found = assert_cause(run_network(machine, 1), "PROXY_INTERCEPTS")
        assert found["evidence"]["status"] == 403
        assert "Access denied" in found["evidence"]["body"]
        machine.set(NO_PROXY="127.0.0.1")
        assert check(run_network(machine, 0), "authenticated read")["status"] == "pass"


def case_proxy_settings_differ(machine, devstack, devstack_keys, tmp_path):
    """ALL_PROXY: requests uses it, urllib never does. NO_PROXY as a network: requests bypasses, urllib does not.
    The doctor says which route the SDK takes and probes that one."""
    with CorporateProxy("block", upstream=upstream(devstack)) as proxy:
        behind(machine, devstack, devstack_keys)
        machine.set(ALL_PROXY=proxy.url(PROXY_USER, PROXY_PASSWORD))
        report = run_network(machine, 1)
        found = assert_cause(report, "PROXY_SETTINGS_DIFFER", status="warn")
        assert (
            f"the SDK (requests {requests_version()}) goes through the proxy http://127.0.0.1:{proxy.port}"
            in (found["message"])
        )
        assert "the standard library goes directly: ALL_PROXY is read by requests, never by urllib" in found["message"]
        assert check(report, "health")["cause"] == "PROXY_BLOCKED"  # probed the SDK's way: through the proxy

        del machine.env["ALL_PROXY"]
        machine.set(HOKUSAI_API_ENDPOINT=devstack.url, MLFLOW_TRACKING_URI=devstack.url)
        machine.set(HTTP_PROXY=proxy.url(), NO_PROXY="127.0.0.0/8")
        report = run_network(machine, 0)
        found = assert_cause(report, "PROXY_SETTINGS_DIFFER", status="warn")
        assert "the SDK (requests" in found["message"] and "goes directly" in found["message"]
        assert f"the standard library goes through the proxy http://127.0.0.1:{proxy.port}" in found["message"]
        assert check(report, "authenticated read")["status"] == "pass"  # direct, as the SDK goes


def case_tls_inspected(machine, devstack, devstack_keys, tmp_path):
    """The proxy re-signs with the company CA: named issuer, the proxy, and the bundle fix, which then works."""
    with CorporateProxy("inspect", upstream=upstream(devstack)) as proxy:
        behind(machine, devstack, devstack_keys)
        machine.set(HTTPS_PROXY=proxy.url(PROXY_USER, PROXY_PASSWORD))
        found = assert_cause(run_network(machine, 1), "TLS_INSPECTED")
        assert "issued by O=Example Corp, OU=Inspecting Proxy CA" in found["message"]
        assert f"through the proxy http://127.0.0.1:{proxy.port}" in found["message"]
        evidence = found["evidence"]
        assert evidence["trusted by the SDK"] is False and evidence["trusted by the system"] is False
        assert evidence["certificate subject"].startswith("O=trustme")  # the leaf the proxy made for the host
        sdk_cas = machine.site / "certifi" / "cacert.pem"  # what requests.certs.where() says in that Python
        assert f"`cat {sdk_cas} company-ca.pem > ~/.hokusai/ca-bundle.pem`" in found["remedy"]
        assert "export REQUESTS_CA_BUNDLE=~/.hokusai/ca-bundle.pem" in found["remedy"]
        assert "Do not turn verification off" in found["remedy"]

        machine.set(REQUESTS_CA_BUNDLE=str(company_bundle(machine, proxy, Path(proxy.write_ca(tmp_path / "ca.pem")))))
        report = run_network(machine, 0)
        health = check(report, "health")
        assert health["status"] == "pass"
        assert "your system's CAs do not (unable to get local issuer certificate)" in health["message"]
        assert check(report, "authenticated read")["status"] == "pass"


def case_tls_inspected_without_a_proxy_setting(machine, devstack, devstack_keys, tmp_path):
    """Interception without a proxy variable: an issuer that is no public CA is inspection all the same."""
    with CorporateProxy("transparent", upstream=upstream(devstack)) as proxy:
        behind(machine, devstack, devstack_keys, registry=f"https://localhost:{proxy.port}")
        found = assert_cause(run_network(machine, 1), "TLS_INSPECTED")
        assert (
            "localhost presents a certificate issued by O=Example Corp, OU=Inspecting Proxy CA, not by a public"
            in (found["message"])
        )
        assert "through the proxy" not in found["message"] and found["evidence"]["route"] == "directly"
        machine.set(REQUESTS_CA_BUNDLE=str(company_bundle(machine, proxy, Path(proxy.write_ca(tmp_path / "ca.pem")))))
        assert check(run_network(machine, 0), "authenticated read")["status"] == "pass"


def case_tls_trusted_by_system_only(machine, devstack, devstack_keys, tmp_path):
    """The company CA is in the system's store (SSL_CERT_FILE stands in for it) but requests uses certifi's."""
    with CorporateProxy("inspect", upstream=upstream(devstack)) as proxy:
        behind(machine, devstack, devstack_keys)
        system = proxy.write_ca(tmp_path / "system-store.pem")
        machine.set(HTTPS_PROXY=proxy.url(), SSL_CERT_FILE=system)
        found = assert_cause(run_network(machine, 1), "TLS_TRUSTED_BY_SYSTEM_ONLY")
        assert "your system's CAs trust it, but the SDK's HTTP stack (requests" in found["message"]
        assert "issued by O=Example Corp, OU=Inspecting Proxy CA" in found["message"]
        assert f"{system} > ~/.hokusai/ca-bundle.pem" in found["remedy"]
        assert found["evidence"]["trusted by the system"] is True

        machine.set(REQUESTS_CA_BUNDLE=str(company_bundle(machine, proxy, Path(system))))
        assert check(run_network(machine, 0), "authenticated read")["status"] == "pass"


def case_tls_verify_disabled(machine, devstack, devstack_keys, tmp_path):
    """Turning verification off gets through an inspecting proxy, and the doctor still warns about it."""
    with CorporateProxy("inspect", upstream=upstream(devstack)) as proxy:
        behind(machine, devstack, devstack_keys)
        machine.set(HTTPS_PROXY=proxy.url(), MLFLOW_TRACKING_INSECURE_TLS="true")
        report = run_network(machine, 0)
        assert_cause(report, "TLS_VERIFY_DISABLED", status="warn")
        assert check(report, "authenticated read")["status"] == "pass"


def requests_version() -> str:
    return requests.__version__


CASES = {
    "PROXY_AUTH_REQUIRED": [case_proxy_auth_required, case_proxy_auth_required_over_plain_http],
    "PROXY_BLOCKED": [case_proxy_blocked],
    "PROXY_TUNNEL_FAILED": [case_proxy_tunnel_failed],
    "PROXY_UNREACHABLE": [case_proxy_unreachable],
    "PROXY_INTERCEPTS": [case_proxy_intercepts],
    "PROXY_SETTINGS_DIFFER": [case_proxy_settings_differ],
    "TLS_INSPECTED": [case_tls_inspected, case_tls_inspected_without_a_proxy_setting],
    "TLS_TRUSTED_BY_SYSTEM_ONLY": [case_tls_trusted_by_system_only],
    "TLS_VERIFY_DISABLED": [case_tls_verify_disabled],
}
CORPORATE_CAUSES = sorted(cause for cause in environment.CAUSES if cause.startswith(("PROXY_", "TLS_")))


def no_case(machine, devstack, devstack_keys, tmp_path):
    pytest.fail("this cause has no case here: add one to CASES")


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=f"{cause}-{case.__name__.removeprefix('case_')}")
        for cause in CORPORATE_CAUSES  # from the doctor's causes table: a new PROXY_/TLS_ cause needs a case
        for case in CASES.get(cause, [no_case])
    ],
)
def test_corporate_network(case, machine, devstack, devstack_keys, tmp_path):
    case(machine, devstack, devstack_keys, tmp_path)


def test_the_doctor_reads_the_certificate_it_was_shown_without_trusting_it(doctor_script, tmp_path):
    """The issuer comes from the DER bytes (standard library only), as openssl prints it."""
    spec = importlib.util.spec_from_file_location("served_doctor", doctor_script)
    doctor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doctor)
    ca = trustme.CA(organization_name="Example Corp", organization_unit_name="Inspecting Proxy CA")
    leaf = ca.issue_cert("registry.hokus.ai").cert_chain_pems[0].bytes()
    der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=leaf, capture_output=True, check=True).stdout
    issuer, subject = doctor.certificate_names(der)
    assert issuer == "O=Example Corp, OU=Inspecting Proxy CA"
    assert subject.startswith("O=trustme")
    assert doctor.certificate_names(b"\x30\x03garbage") == ("(unreadable)", "(unreadable)")


def test_every_corporate_cause_has_a_guide_on_the_portal():
    assert set(CORPORATE_CAUSES) - set(environment.GUIDES) == set()
    for cause in CORPORATE_CAUSES:
        guide = environment.GUIDES[cause]
        assert guide.title and guide.steps, cause
        assert not any("verify=False" in step and "Never" not in step for step in guide.steps)


@pytest.mark.django_db
def test_the_report_page_names_the_proxy_and_the_issuer_with_the_guide(alice, machine, devstack, devstack_keys):
    """The doctor's --json behind an inspecting proxy, pasted into the portal: the cause, the issuer, the proxy
    (no credentials) and the guide are on the report page."""
    with CorporateProxy("inspect", upstream=upstream(devstack)) as proxy:
        behind(machine, devstack, devstack_keys)
        machine.set(HTTPS_PROXY=proxy.url(PROXY_USER, PROXY_PASSWORD))
        text = machine.run("--network", "--json", expect_rc=1).stdout
    client = Client()
    client.force_login(alice)
    answer = client.post("/onboarding/environment/", {"report": text})
    assert answer.status_code == 302, answer.content.decode()[:500]
    page = client.get(answer["Location"]).content.decode()
    assert 'data-cause="TLS_INSPECTED" data-status="fail"' in page
    assert "issued by O=Example Corp, OU=Inspecting Proxy CA" in page
    assert f"through the proxy http://127.0.0.1:{proxy.port}" in page
    assert 'data-testid="doctor-guide" data-cause="TLS_INSPECTED"' in page
    assert "Guide: Trust your company&#x27;s CA in the SDK, not by turning checks off" in page
    assert 'data-testid="doctor-guide" data-cause="PROXY_SETTINGS_DIFFER"' not in page  # only the causes it has
    assert PROXY_PASSWORD not in page and PROXY_USER not in page
    assert EnvironmentReport.objects.get(user=alice).doctor_version == "1.1.0"


def test_a_socks_proxy_is_named_and_not_probed(machine):
    """The standard library cannot speak SOCKS: the doctor names the SDK's route and says it did not probe it,
    rather than reporting the registry unreachable from a route the SDK does not take."""
    machine.healthy()
    machine.install_http_stack()
    machine.set(ALL_PROXY=f"socks5h://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{free_port()}")
    machine.secrets += [PROXY_USER, PROXY_PASSWORD]
    report = run_network(machine, 0)
    health = check(report, "health")
    assert health["status"] == "skip"
    assert "cannot probe through a socks5h proxy" in health["message"]
    assert "PySocks is not installed here" in health["message"]
    assert check(report, "proxy route")["cause"] == "PROXY_SETTINGS_DIFFER"


def test_a_proxy_with_a_port_out_of_range_is_a_cause_not_a_crash(machine):
    machine.healthy()
    machine.install_http_stack()
    machine.set(HTTPS_PROXY=f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:99999")
    machine.secrets += [PROXY_USER, PROXY_PASSWORD]
    found = assert_cause(run_network(machine, 1), "PROXY_UNREACHABLE")
    assert "Port out of range" in found["message"]


ROUTE_CASES = [
    ({"HTTPS_PROXY": "http://p:1"}, "https://registry.hokus.ai/api"),
    ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"}, "https://registry.hokus.ai/api"),
    ({"https_proxy": "", "HTTPS_PROXY": "http://upper:1"}, "https://registry.hokus.ai/api"),
    ({"ALL_PROXY": "http://all:1"}, "https://registry.hokus.ai/api"),
    ({"all_proxy": "http://all:1", "HTTP_PROXY": "http://h:1"}, "https://registry.hokus.ai/api"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "hokus.ai"}, "https://registry.hokus.ai/api"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".hokus.ai"}, "https://registry.hokus.ai/api"),
    ({"HTTPS_PROXY": "http://p:1", "no_proxy": "*"}, "https://registry.hokus.ai/api"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "kus.ai"}, "https://registry.hokus.ai/api"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "registry.hokus.ai:8443"}, "https://registry.hokus.ai:8443/x"),
    ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3:5000/mlflow"),
    ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.1.2.3"}, "http://10.1.2.3:5000/mlflow"),
    ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "192.168.0.0/16"}, "http://10.1.2.3:5000/mlflow"),
]


@pytest.mark.parametrize(("variables", "url"), ROUTE_CASES)
def test_the_doctors_reading_of_proxy_variables_matches_requests_and_urllib(doctor_script, monkeypatch, variables, url):
    """Where requests cannot be asked (not importable in that Python), the doctor's own reading of its rules
    gives the proxy requests gives; and its reading of urllib's, the proxy urllib's ProxyHandler uses."""
    spec = importlib.util.spec_from_file_location("served_doctor", doctor_script)
    doctor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doctor)
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = requests.Session().merge_environment_settings(url, {}, None, True, None)
    assert doctor.requests_proxy_for(dict(os.environ), url) == requests.utils.select_proxy(url, settings["proxies"])
    request = urllib.request.Request(url)
    proxies = urllib.request.getproxies_environment()
    by_urllib = None if urllib.request.proxy_bypass(request.host) else proxies.get(request.type)
    assert doctor.stdlib_proxy_for(dict(os.environ), url) == by_urllib
