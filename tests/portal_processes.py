"""Run a whole process set of the portal (`make run`, `make production`) and use it over HTTP as a
person would: sign up or in, save a key, start a check, read the check page. Each set gets a private
PORTAL_VAR_DIR, which marks its processes so a test can find them, kill one, or prove none is left."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from tests.conftest import ROOT

POSTGRES = "postgres://postgres@127.0.0.1:5432"


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries `marker` (the set's private PORTAL_VAR_DIR)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class ProcessSet:
    def __init__(self, tmp_path: Path, command: list[str], env: dict[str, str]):
        self.var_dir = tmp_path / "var"
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.log_path = tmp_path / "processes.log"
        self.marker = f"PORTAL_VAR_DIR={self.var_dir}"
        self.env = {**env, "PORTAL_VAR_DIR": str(self.var_dir)}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float) -> float:
        """Seconds until `text` appears in the log."""
        started = time.monotonic()
        while text not in self.log:
            assert self.process.poll() is None, f"the process set exited:\n{self.log[-4000:]}"
            assert time.monotonic() - started < timeout, f"no {text!r} after {timeout}s:\n{self.log[-4000:]}"
            time.sleep(0.2)
        return time.monotonic() - started

    def pids(self, fragment: str) -> list[int]:
        """Processes of this set whose command line contains `fragment` (the lifeline wrapper execs into it)."""
        return [pid for pid in processes_with(self.marker) if fragment in command_line(pid)]

    def supervisor_pid(self) -> int:
        return next(pid for pid in self.pids("supervisord"))

    def stop(self, sig=signal.SIGINT, timeout: float = 90) -> float:
        """Signal the whole group as a terminal's Ctrl-C does; seconds until nothing of the set is left."""
        started = time.monotonic()
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.wait_gone(timeout)
        return time.monotonic() - started

    def wait_gone(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while processes_with(self.marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {pid: command_line(pid)[:120] for pid in processes_with(self.marker)}
        assert not left, f"processes left behind: {left}"

    def kill_everything(self) -> None:
        for pid in processes_with(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class PortalUser(requests.Session):
    """A person in a browser, minus the browser: cookies, CSRF tokens, forms."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def form_post(self, path: str, data: dict, headers: dict | None = None, **kwargs) -> requests.Response:
        url = self.base_url + path
        if "csrftoken" not in self.cookies:
            self.get(url, timeout=10)
        return self.post(
            url,
            data={**data, "csrfmiddlewaretoken": self.cookies["csrftoken"]},
            headers={"Referer": url, **(headers or {})},
            timeout=15,
            **kwargs,
        )

    def sign_in(self, username: str, password: str) -> None:
        response = self.form_post("/accounts/login/", {"login": username, "password": password})
        assert "/accounts/login/" not in response.url, "sign-in failed"

    def sign_up(self, email: str, password: str) -> None:
        response = self.form_post("/accounts/signup/", {"email": email, "password1": password})
        assert response.status_code == 200 and "/onboarding/" in response.url, response.text[-2000:]

    def save_key(self, key: str) -> None:
        response = self.form_post("/onboarding/key/", {"api_key": key})
        assert response.url.endswith("/onboarding/connectivity/"), response.text[-2000:]

    def start_check(self) -> int:
        response = self.form_post("/onboarding/connectivity/", {"model_name": ""})
        assert response.status_code == 200, response.status_code
        return int(re.search(r"/onboarding/checks/(\d+)/", response.url).group(1))

    def run_attempt(self, run_id: int) -> int:
        """Which attempt the page shows (2: a worker died and another took the check over)."""
        page = self.get(f"{self.base_url}/onboarding/checks/{run_id}/", headers={"HX-Request": "true"}, timeout=10).text
        return int(re.search(rf'id="run-{run_id}" [^>]*data-attempt="(\d+)"', page).group(1))

    def run_state(self, run_id: int) -> tuple[str, str]:
        """(status, cause) as the check page shows them, fetched as its htmx poll does (the partial)."""
        page = self.get(f"{self.base_url}/onboarding/checks/{run_id}/", headers={"HX-Request": "true"}, timeout=10).text
        match = re.search(rf'id="run-{run_id}" class="run" [^>]*data-status="(\w+)" data-cause="(\w*)"', page)
        assert match, page[-2000:]
        return match.group(1), match.group(2)

    def wait_for_state(self, run_id: int, states: set[str], timeout: float) -> tuple[str, str, float]:
        """Poll the page as the browser does; (status, cause, seconds) once the status is one of `states`."""
        started = time.monotonic()
        while True:
            status, cause = self.run_state(run_id)
            elapsed = time.monotonic() - started
            if status in states:
                return status, cause, elapsed
            assert elapsed < timeout, f"run {run_id} still {status} after {timeout}s"
            time.sleep(0.1)


def production_env(database_url: str, broker_url: str, port: int, registry_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG",)}
    env.update(
        PORTAL_ENV="production",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        SECRET_KEY=Fernet.generate_key().decode() * 2,
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        PORTAL_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        WORKER_PROCESSES="2",
        HOKUSAI_REGISTRY_URL=registry_url,
        # This test host has no TLS in front: the cookies and redirects a proxy's HTTPS would need are off.
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    )
    return env


def wait_healthy(base: str, timeout: float, workers: int) -> dict:
    deadline, body = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        try:
            body = requests.get(f"{base}/healthz", timeout=5).json()
            if body["ok"] and body["checks"]["workers"]["alive"] >= workers:
                return body
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"not healthy after {timeout}s: {body}")


def wait_probed(base: str, timeout: float) -> dict:
    """/status.json once beat's probes have reported every component operational (and the registry side is
    monitored): proof that beat sends the probes and a worker runs them in this process set."""
    deadline, body = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        try:
            body = requests.get(f"{base}/status.json", timeout=5).json()
        except (requests.RequestException, ValueError):
            body = {}
        components = {c["id"]: c for c in body.get("components", [])}
        if components and all(c["status"] == "operational" and c["monitored"] for c in components.values()):
            return body
        time.sleep(0.5)
    raise AssertionError(f"the status probes did not report every component operational: {body}")
