"""The ONLY module that talks to the registry over the network.

Credentials go per request (never via os.environ: two users' checks share one worker); every call
has its own connect/read timeouts capped by the run's deadline; no retries (MLflow's client defaults
take ~246 s to fail on a dead registry)."""

import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from urllib.parse import urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter

CONNECT_TIMEOUT = 1.5
READ_TIMEOUT = 2.5
EVIDENCE_HEADERS = ("Content-Type", "WWW-Authenticate", "Retry-After", "Server", "X-Request-Id", "Location")
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dns")


class DeadlineExceeded(TimeoutError):
    pass


class Deadline:
    def __init__(self, seconds: float):
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def cap(self, seconds: float) -> float:
        remaining = self.remaining()
        if remaining <= 0.05:
            raise DeadlineExceeded("the check's deadline has passed")
        return min(seconds, remaining)


def ca_bundle() -> str:
    """The certificates a registry's TLS must chain to: HOKUSAI_REGISTRY_CA_BUNDLE (a registry behind a
    private CA), else certifi's, which is what the MLflow client (requests) trusts."""
    from django.conf import settings

    return settings.HOKUSAI_REGISTRY_CA_BUNDLE or certifi.where()


class RegistryClient:
    def __init__(self, base_url: str, api_key: str, *, deadline: Deadline):
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._api_key = api_key
        self.deadline = deadline
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy, netrc or CA settings leak in from the worker's environment
        # One trust store for the TLS step and every HTTP call (they disagreed: the system's and certifi's).
        self.ca_bundle = ca_bundle()
        self.session.verify = self.ca_bundle
        adapter = HTTPAdapter(max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def use_key(self, api_key: str) -> None:
        self._api_key = api_key

    def close(self) -> None:
        self.session.close()

    # --- below HTTP ------------------------------------------------------------------------
    def resolve(self) -> list[str]:
        future = _resolver.submit(socket.getaddrinfo, self.host, self.port, type=socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=self.deadline.cap(CONNECT_TIMEOUT))
        except FutureTimeout as exc:
            raise socket.gaierror(f"DNS lookup of {self.host} timed out") from exc
        return sorted({info[4][0] for info in infos})

    def tcp_connect(self, address: str) -> float:
        started = time.perf_counter()
        with socket.create_connection((address, self.port), timeout=self.deadline.cap(CONNECT_TIMEOUT)):
            return (time.perf_counter() - started) * 1000

    def tls_handshake(self, address: str) -> dict:
        context = ssl.create_default_context(cafile=self.ca_bundle)
        timeout = self.deadline.cap(CONNECT_TIMEOUT + READ_TIMEOUT)
        with socket.create_connection((address, self.port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=self.host) as tls:
                cert = tls.getpeercert()
                expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), tz=UTC)
                return {
                    "protocol": tls.version(),
                    "expires": expires,
                    "issuer": dict(x[0] for x in cert.get("issuer", ())),
                }

    # --- HTTP ------------------------------------------------------------------------------
    def _headers(self, authenticated: bool) -> dict:
        return {"Authorization": f"Bearer {self._api_key}"} if authenticated else {}

    def request(self, method: str, path: str, *, authenticated: bool = True, **kwargs) -> requests.Response:
        timeout = (self.deadline.cap(CONNECT_TIMEOUT), self.deadline.cap(READ_TIMEOUT))
        return self.session.request(
            method,
            f"{self.base_url}{path}",
            headers=self._headers(authenticated),
            timeout=timeout,
            allow_redirects=False,
            **kwargs,
        )

    def get(self, path: str, /, *, authenticated: bool = True, **params) -> requests.Response:
        # positional-only `path`: MLflow has query parameters named "path" too
        return self.request("GET", path, authenticated=authenticated, params=params or None)

    def post(self, path: str, payload: dict) -> requests.Response:
        return self.request("POST", path, json=payload)

    def delete(self, path: str, payload: dict) -> requests.Response:
        return self.request("DELETE", path, json=payload)


def response_evidence(response: requests.Response, body_bytes: int = 300) -> dict:
    """Status, the headers that explain an answer and the first bytes of the body (caller redacts)."""
    return {
        "request": f"{response.request.method} {urlsplit(response.request.url).path}",
        "status_code": response.status_code,
        "headers": {name: response.headers[name] for name in EVIDENCE_HEADERS if name in response.headers},
        "body": response.content[:body_bytes].decode("utf-8", "replace"),
    }
