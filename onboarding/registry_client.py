"""The ONLY module that talks to the registry over the network, and the only one that knows MLflow's
REST paths and bodies: checks, registration, /healthz and `diagnose` call the typed methods below and read
answers through `json_body`; nothing else spells an MLflow path.

Every method returns the `requests.Response` as it came (callers diagnose status codes and keep it as
evidence); `json_body` reads a body that may not be JSON, or not an object, as {}.

Credentials go per request (never via os.environ: two users' checks share one worker); every call
has its own connect/read timeouts capped by the run's deadline; no retries (MLflow's client defaults
take ~246 s to fail on a dead registry)."""

import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter

API = "/api/2.0/mlflow"
AJAX_API = "/ajax-api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
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

    # --- MLflow's REST API, typed --------------------------------------------------------------
    # Server
    def health(self) -> requests.Response:
        return self.get("/health", authenticated=False)

    def version(self) -> requests.Response:
        return self.get("/version")

    def server_info(self) -> requests.Response:
        """Public on MLflow 3 (its body names the store type): tells MLflow from another server."""
        return self.get("/api/3.0/mlflow/server-info", authenticated=False)

    # Tracking
    def search_experiments(self, *, max_results: int = 1, page_token: str = "") -> requests.Response:
        params = {"max_results": max_results} | ({"page_token": page_token} if page_token else {})
        return self.get(f"{API}/experiments/search", **params)

    def search_runs(
        self, *, experiment_ids: list[str], filter: str, max_results: int, page_token: str = ""
    ) -> requests.Response:
        """Newest first. MLflow 3 lists a run's logged models under outputs.model_outputs."""
        payload = {
            "experiment_ids": experiment_ids,
            "filter": filter,
            "max_results": max_results,
            "order_by": ["attributes.start_time DESC"],
        }
        if page_token:
            payload["page_token"] = page_token
        return self.post(f"{API}/runs/search", payload)

    def get_run(self, run_id: str) -> requests.Response:
        return self.get(f"{API}/runs/get", run_id=run_id)

    def list_artifacts(self, run_id: str, path: str) -> requests.Response:
        return self.get(f"{API}/artifacts/list", run_id=run_id, path=path)

    def list_artifact_root(self) -> requests.Response:
        """The artifact store's top folder, through the tracking server's artifact proxy (the status probe)."""
        return self.get(ARTIFACTS_API, path="")

    def artifact_file(self, path: str) -> requests.Response:
        """A file through the tracking server's artifact proxy (an mlflow-artifacts:/ URI's path)."""
        return self.get(f"{ARTIFACTS_API}/{quote(path)}")

    # Logged models (MLflow 3)
    def get_logged_model(self, model_id: str) -> requests.Response:
        return self.get(f"{API}/logged-models/{quote(model_id, safe='')}")

    def search_logged_models(self, *, experiment_ids: list, run_id: str, max_results: int = 50) -> requests.Response:
        return self.post(
            f"{API}/logged-models/search",
            {"experiment_ids": experiment_ids, "filter": f"source_run_id = '{run_id}'", "max_results": max_results},
        )

    def logged_model_files(self, model_id: str, directory: str = "") -> requests.Response:
        return self.get(
            f"{AJAX_API}/logged-models/{quote(model_id, safe='')}/artifacts/directories",
            artifact_directory_path=directory,
        )

    def logged_model_file(self, model_id: str, path: str) -> requests.Response:
        return self.get(f"{AJAX_API}/logged-models/{quote(model_id, safe='')}/artifacts/files", artifact_file_path=path)

    # Registered models
    def search_registered_models(self, *, max_results: int = 1) -> requests.Response:
        return self.get(f"{API}/registered-models/search", max_results=max_results)

    def get_registered_model(self, name: str) -> requests.Response:
        return self.get(f"{API}/registered-models/get", name=name)

    def create_registered_model(self, name: str) -> requests.Response:
        return self.post(f"{API}/registered-models/create", {"name": name})

    def delete_registered_model(self, name: str) -> requests.Response:
        return self.delete(f"{API}/registered-models/delete", {"name": name})

    def set_registered_model_tag(self, name: str, key: str, value: str) -> requests.Response:
        return self.post(f"{API}/registered-models/set-tag", {"name": name, "key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> requests.Response:
        return self.delete(f"{API}/registered-models/delete-tag", {"name": name, "key": key})

    # Model versions
    def get_model_version(self, name: str, version: str) -> requests.Response:
        return self.get(f"{API}/model-versions/get", name=name, version=version)

    def search_model_versions(self, filter: str, *, max_results: int | None = None) -> requests.Response:
        params = {"filter": filter} | ({"max_results": max_results} if max_results else {})
        return self.get(f"{API}/model-versions/search", **params)

    def create_model_version(
        self, *, name: str, source: str, tags: dict[str, str], run_id: str | None = None, model_id: str | None = None
    ) -> requests.Response:
        payload: dict = {"name": name, "source": source, "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        if run_id:
            payload["run_id"] = run_id
        if model_id:
            payload["model_id"] = model_id
        return self.post(f"{API}/model-versions/create", payload)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> requests.Response:
        return self.post(
            f"{API}/model-versions/set-tag", {"name": name, "version": version, "key": key, "value": value}
        )

    def get_download_uri(self, name: str, version: str) -> requests.Response:
        return self.get(f"{API}/model-versions/get-download-uri", name=name, version=version)


def json_body(response: requests.Response) -> dict:
    """The body as a dict: {} when it is not JSON or not an object (a proxy's HTML page, a bare list)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def version_tags(version: dict) -> dict[str, str]:
    """A model version's tags (MLflow sends a list of {key, value}) as a dict."""
    return {t.get("key"): t.get("value") for t in version.get("tags", []) if isinstance(t, dict)}


def response_evidence(response: requests.Response, body_bytes: int = 300) -> dict:
    """Status, the headers that explain an answer and the first bytes of the body (caller redacts)."""
    return {
        "request": f"{response.request.method} {urlsplit(response.request.url).path}",
        "status_code": response.status_code,
        "headers": {name: response.headers[name] for name in EVIDENCE_HEADERS if name in response.headers},
        "body": response.content[:body_bytes].decode("utf-8", "replace"),
    }
