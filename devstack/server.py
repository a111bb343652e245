"""Start, stop and seed the devstack registry (a real `mlflow server --app-name basic-auth`)."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .keystore import KeyRecord, KeyStore, key_generate

EXPERIMENT_NAME = "lscor-lead-scoring"
# role -> (MLflow username, scopes, admin, revoked). "other" owns models nobody else may write.
ROLES = {
    "writer": ("writer", ["model:read", "model:write"], False, False),
    "reader": ("reader", ["model:read"], False, False),
    "revoked": ("revoked", ["model:read", "model:write"], False, True),
    "other": ("other", ["model:read", "model:write"], False, False),
    "admin": ("admin", ["admin"], True, False),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DevstackError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux), so a killed `make run` or
    test session leaves no MLflow server holding the port. MLflow forwards it to its uvicorn."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class Devstack:
    """One MLflow server process with the gateway plugin, its data under `data_dir`."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        port: int = 5000,
        host: str = "127.0.0.1",
        registry_lock: bool = False,
        gateway: bool = True,
        workers: int = 1,
    ):
        """`gateway=False` runs MLflow's plain basic-auth app (username/password only), the way a
        self-hosted registry without Hokusai's gateway answers."""
        self.data_dir = Path(data_dir).resolve()
        self.gateway = gateway
        self.host = host
        self.port = port
        self.registry_lock = registry_lock
        # MLflow spends ~94 ms of CPU on one connectivity check's calls: one process saturates near 10
        # checks/s (bench/load.py); `make run` starts 2.
        self.workers = workers
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "devstack.json"

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys.json"

    # --- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        if self.state_path.exists():
            return json.loads(self.state_path.read_text())
        return {}

    def _save_state(self, state: dict) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.state_path)

    def configure(self) -> dict:
        """Create the data folder, the admin secret and the auth ini (idempotent)."""
        (self.data_dir / "artifacts").mkdir(parents=True, exist_ok=True)
        state = self.state()
        if "admin_password" not in state:
            state.update(
                admin_username="admin",
                admin_password=secrets.token_urlsafe(18),
                flask_secret=secrets.token_urlsafe(32),
            )
            self._save_state(state)
        ini = (
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{self.data_dir / 'auth.db'}\n"
            f"admin_username = {state['admin_username']}\n"
            f"admin_password = {state['admin_password']}\n"
        )
        if self.gateway:
            ini += "authorization_function = devstack.gateway:authenticate_request\n"
        ini_path = self.data_dir / "auth.ini"
        ini_path.write_text(ini)
        ini_path.chmod(0o600)
        return state

    # --- process -----------------------------------------------------------------------------
    def command(self) -> list[str]:
        mlflow_bin = str(Path(sys.executable).parent / "mlflow")
        return [
            mlflow_bin,
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--backend-store-uri",
            f"sqlite:///{self.data_dir / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.data_dir / "artifacts"),
            "--allowed-hosts",
            f"{self.host},{self.host}:{self.port},localhost,localhost:{self.port}",
        ]

    def environment(self, state: dict) -> dict:
        env = dict(os.environ)
        for name in (
            "MLFLOW_TRACKING_TOKEN",
            "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD",
            "HOKUSAI_API_KEY",
        ):
            env.pop(name, None)
        project_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root, env.get("PYTHONPATH")]))
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(self.data_dir / "auth.ini")
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = state["flask_secret"]
        env["DEVSTACK_KEYS_FILE"] = str(self.keys_path)
        env["DEVSTACK_REGISTRY_LOCK"] = "1" if self.registry_lock else "0"
        # MLflow's job runner (8 huey consumers in sessions of their own) serves GenAI jobs the devstack
        # never runs; without it nothing outlives the server's process group.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        return env

    def start(self, timeout: float = 90, log_file: str | os.PathLike | None = None, wait: bool = True) -> "Devstack":
        state = self.configure()
        log = open(log_file or self.data_dir / f"server-{self.port}.log", "ab")
        self.process = subprocess.Popen(
            self.command(),
            env=self.environment(state),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() takes the workers too
            preexec_fn=_die_with_parent,  # and it stops when whoever started it dies, even by SIGKILL
        )
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def is_ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=1).ok
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise DevstackError(
                    f"MLflow server exited with {self.process.returncode}; see {self.data_dir}/server-{self.port}.log"
                )
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise DevstackError(f"MLflow server not ready on {self.url} after {timeout:.0f}s")

    def stop(self, timeout: float = 3) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        # uvicorn workers share the group; make sure none outlives the server.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "Devstack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- seed --------------------------------------------------------------------------------
    def admin_session(self) -> requests.Session:
        state = self.state()
        session = requests.Session()
        session.auth = (state["admin_username"], state["admin_password"])
        return session

    def seed(self) -> dict:
        """Users, keys and the LSCOR run. Safe to run again: reuses what exists."""
        state = self.configure()
        admin = self.admin_session()
        store = KeyStore(self.keys_path)
        users = state.setdefault("users", {})
        keys = state.setdefault("keys", {})
        for role, (username, scopes, is_admin, revoked) in ROLES.items():
            if username != state["admin_username"] and role not in users:
                password = secrets.token_urlsafe(18)
                response = self._admin_post(
                    admin, "/api/2.0/mlflow/users/create", {"username": username, "password": password}
                )
                if not response.ok and "RESOURCE_ALREADY_EXISTS" not in response.text:
                    raise DevstackError(f"creating MLflow user {username}: HTTP {response.status_code}")
                users[role] = {"username": username, "password": password}
            if role not in keys:
                keys[role] = key_generate()
                store.add(
                    keys[role], KeyRecord(username=username, scopes=scopes, admin=is_admin, revoked=revoked, label=role)
                )
            self._save_state(state)
        if not self._run_exists(state.get("run_id")):
            state.update(self._seed_run(keys["writer"]))
            self._save_state(state)
        return state

    def _admin_post(self, admin: requests.Session, path: str, payload: dict, attempts: int = 4) -> requests.Response:
        """A first start on a loaded machine answers slowly (user creation took 8–10 s once): wait
        longer and try again before calling the seed failed. A retried create may find the user made."""
        for attempt in range(1, attempts + 1):
            try:
                return admin.post(f"{self.url}{path}", json=payload, timeout=30)
            except requests.RequestException:
                if attempt == attempts:
                    raise
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def _run_exists(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        response = self.admin_session().get(
            f"{self.url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=30
        )
        return response.ok and response.json()["run"]["info"]["status"] == "FINISHED"

    def _seed_run(self, writer_key: str) -> dict:
        # A separate process: MLflow's client reads the token from its environment, and the
        # key must not go on argv nor into this process's environment.
        env = dict(os.environ)
        env.update(
            MLFLOW_TRACKING_URI=self.url,
            MLFLOW_TRACKING_TOKEN=writer_key,
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
            MLFLOW_HTTP_REQUEST_TIMEOUT="60",
            PYTHONPATH=os.pathsep.join(
                filter(None, [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")])
            ),
        )
        result = subprocess.run(
            [sys.executable, "-m", "devstack.seed_run", EXPERIMENT_NAME],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise DevstackError(f"seeding the LSCOR run failed:\n{result.stderr[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])
