"""Benchmark: time to verdict of the connectivity check, per fault, against MLflow's client defaults.

    .venv/bin/python bench/diagnose.py [--runs 5] [--mlflow-cap 300] [--skip-mlflow] [--skip-web]

1. For the healthy devstack and each fault: the median time to verdict of the portal's check over
   --runs runs, beside the time the MLflow client (default retries and timeouts) takes to fail on the
   same fault (capped), and the ratio.
2. Submit -> verdict visible for a healthy check through the web app (runserver + a Celery worker),
   on the embedded default broker (filesystem) and on Redis.
Prints markdown tables. Everything runs on loopback; nothing outside this machine is contacted."""

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR_DIR = Path(tempfile.mkdtemp(prefix="bench-diagnose-"))
os.environ["PORTAL_VAR_DIR"] = str(VAR_DIR)
os.environ.pop("DATABASE_URL", None)
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")

import django  # noqa: E402

from hokusai_portal import runtime  # noqa: E402

runtime.prepare()
django.setup()

import requests  # noqa: E402

from devstack.keystore import key_generate  # noqa: E402
from devstack.server import Devstack, free_port  # noqa: E402
from onboarding.checks import ConnectivityCheck  # noqa: E402
from onboarding.diagnosis import StepStatus  # noqa: E402
from tests.fault_servers import http_server, hung_server, self_signed_context  # noqa: E402

MLFLOW_PROBE = """
import sys, time
from mlflow import MlflowClient
started = time.perf_counter()
try:
    client = MlflowClient()
    if sys.argv[1] == "write":
        client.create_registered_model("bench-probe-" + str(int(time.time() * 1000)))
    else:
        client.search_registered_models(max_results=1)
    outcome = "ok"
except Exception as exc:
    outcome = type(exc).__name__
print(f"{time.perf_counter() - started:.3f} {outcome}")
"""


def median_ms(values):
    return statistics.median(values) * 1000


def time_portal(url: str, key: str, runs: int) -> tuple[float, str, float]:
    durations, causes, server_ms = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        results = ConnectivityCheck(url, key).run()
        durations.append(time.perf_counter() - started)
        failure = next((r for r in results if r.status == StepStatus.FAIL), None)
        causes.append(failure.cause if failure else "OK")
        server_ms.append(sum(r.duration_ms for r in results))
    return median_ms(durations), "/".join(sorted(set(causes))), statistics.median(server_ms)


def start_mlflow_probe(url: str, key: str, operation: str, cap: float) -> subprocess.Popen:
    env = dict(os.environ, MLFLOW_TRACKING_URI=url, MLFLOW_TRACKING_TOKEN=key)
    proc = subprocess.Popen(
        [sys.executable, "-c", MLFLOW_PROBE, operation],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    proc.cap = cap
    proc.started = time.monotonic()
    return proc


def finish_mlflow_probe(proc: subprocess.Popen) -> tuple[float, str]:
    remaining = max(0.1, proc.cap - (time.monotonic() - proc.started))
    try:
        out, _ = proc.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return proc.cap, f"still waiting at {proc.cap:.0f} s (capped)"
    seconds, outcome = out.strip().split()[-2:]
    return float(seconds), outcome


def web_submit_to_verdict(stack: Devstack, key: str, broker: str, runs: int) -> list[float]:
    """Start runserver + worker on `broker`, sign in, submit checks, poll like htmx until the verdict shows."""
    from django.core.management import call_command

    from accounts.roles import Role
    from accounts.services import user_create
    from onboarding import services

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="bench").first() or user_create(
        username="bench", password="bench-password-123", role=Role.DEVELOPER
    )
    services.api_key_save(user=user, raw_key=key)
    port = free_port()
    env = dict(os.environ, CELERY_BROKER_URL=broker, HOKUSAI_REGISTRY_URL=stack.url)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hokusai_portal",
            "worker",
            "--pool",
            "threads",
            "-c",
            "4",
            "-l",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        session = requests.Session()
        for _ in range(100):
            with contextlib.suppress(requests.RequestException):
                if session.get(f"{base}/accounts/login/", timeout=1).ok:
                    break
            time.sleep(0.2)
        session.post(
            f"{base}/accounts/login/",
            data={
                "login": "bench",
                "password": "bench-password-123",
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/accounts/login/"},
        )
        time.sleep(2)  # let the worker finish starting
        timings = []
        for _ in range(runs + 1):  # the first warms up imports and connections
            started = time.perf_counter()
            page = session.post(
                f"{base}/onboarding/connectivity/",
                data={"model_name": "", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                headers={"Referer": f"{base}/onboarding/connectivity/"},
            )
            run_url = page.url
            while True:
                partial = session.get(run_url, headers={"HX-Request": "true"}).text
                status = re.search(r'data-status="(\w+)"', partial).group(1)
                if status in ("passed", "failed", "lost"):
                    break
                time.sleep(0.05)  # the browser polls every 500 ms; poll faster to measure the pipeline
            timings.append(time.perf_counter() - started)
        return timings[1:]
    finally:
        for proc in (web, worker):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mlflow-cap", type=float, default=300)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-web", action="store_true")
    args = parser.parse_args()

    stack = Devstack(VAR_DIR / "devstack", port=free_port()).start()
    locked = basic = None
    try:
        keys = stack.seed()["keys"]
        locked = Devstack(stack.data_dir, port=free_port(), registry_lock=True).start()
        basic = Devstack(VAR_DIR / "basic", port=free_port(), gateway=False).start()
        tls = self_signed_context(VAR_DIR)
        with contextlib.ExitStack() as stack_of_servers:
            hung = stack_of_servers.enter_context(hung_server())
            unavailable = stack_of_servers.enter_context(http_server(503, b"Service Unavailable"))
            self_signed = stack_of_servers.enter_context(http_server(200, b"OK", tls_context=tls))
            cases = [
                ("healthy (writer key)", stack.url, keys["writer"], "read"),
                ("reader key, write step", stack.url, keys["reader"], "write"),
                ("revoked key", stack.url, keys["revoked"], "read"),
                ("made-up key", stack.url, key_generate("hk_live_"), "read"),
                ("registry lock on", locked.url, keys["writer"], "read"),
                ("closed port", f"http://127.0.0.1:{free_port()}", keys["writer"], "read"),
                ("unresolvable host", "http://registry.hokusai.invalid", keys["writer"], "read"),
                ("hung socket", hung, keys["writer"], "read"),
                ("server answers 503", unavailable, keys["writer"], "read"),
                ("self-signed https", self_signed, keys["writer"], "read"),
                ("basic-auth MLflow, bearer key", basic.url, keys["writer"], "read"),
            ]
            probes = {}
            if not args.skip_mlflow:
                probes = {name: start_mlflow_probe(url, key, op, args.mlflow_cap) for name, url, key, op in cases}
            rows = []
            for name, url, key, _ in cases:
                portal_ms, cause, server_ms = time_portal(url, key, args.runs)
                rows.append((name, cause, portal_ms, server_ms))
            mlflow = {name: finish_mlflow_probe(proc) for name, proc in probes.items()}

        print(
            f"\n### Time to verdict (median of {args.runs}; MLflow client defaults capped at {args.mlflow_cap:.0f} s)\n"
        )
        print("| case | portal cause | portal verdict | steps' own time | MLflow client | MLflow outcome | ratio |")
        print("|---|---|---:|---:|---:|---|---:|")
        worst_fault = 0.0
        for name, cause, portal_ms, server_ms in rows:
            if not name.startswith("healthy"):
                worst_fault = max(worst_fault, portal_ms)
            if name in mlflow:
                seconds, outcome = mlflow[name]
                ratio_value = seconds * 1000 / portal_ms if portal_ms else 0
                ratio = f"{ratio_value:.1f}×" if ratio_value < 10 else f"{ratio_value:.0f}×"
                print(
                    f"| {name} | `{cause}` | {portal_ms:.0f} ms | {server_ms:.0f} ms | {seconds:.1f} s | {outcome} | {ratio} |"
                )
            else:
                print(f"| {name} | `{cause}` | {portal_ms:.0f} ms | {server_ms:.0f} ms | - | - | - |")
        print(
            f"\nworst fault verdict: {worst_fault:.0f} ms (target ≤ 5000 ms); healthy: {rows[0][2]:.0f} ms (target ≤ 1000 ms)"
        )

        if not args.skip_web:
            print(f"\n### Submit → verdict visible through the web app (healthy check, median of {args.runs})\n")
            print("| broker | median | min | max |")
            print("|---|---:|---:|---:|")
            for label, broker in (
                ("filesystem (embedded default)", "filesystem://"),
                ("Redis", "redis://127.0.0.1:6379/15"),
            ):
                try:
                    timings = web_submit_to_verdict(stack, keys["writer"], broker, args.runs)
                except Exception as exc:  # e.g. no Redis on this machine
                    print(f"| {label} | failed: {type(exc).__name__} | | |")
                    continue
                print(
                    f"| {label} | {median_ms(timings):.0f} ms | {min(timings) * 1000:.0f} ms | {max(timings) * 1000:.0f} ms |"
                )
    finally:
        for server in (basic, locked, stack):
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
