"""Benchmark: the portal's checked registration against the same registration with bare MlflowClient calls.

    .venv/bin/python bench/register.py [--runs 5]

Portal: pre-checks (run, MLmodel, metric, name, token id, write) + register + verify, as the worker runs
it (RegistrationCheck). Bare: what the rendered snippet does with MlflowClient (create the registered
model if absent, create the version from the resolved logged model, set the six tags), none of the
checks. Each run registers a fresh model name on a devstack started here. Prints a markdown table and
the ratio of medians."""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR_DIR = Path(tempfile.mkdtemp(prefix="bench-register-"))
os.environ["PORTAL_VAR_DIR"] = str(VAR_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")

import django  # noqa: E402

from hokusai_portal import runtime  # noqa: E402

runtime.prepare()
django.setup()

from devstack.server import Devstack, free_port  # noqa: E402
from onboarding.registration import RegistrationCheck  # noqa: E402
from onboarding.registration_input import registration_validate  # noqa: E402
from onboarding.snippet import python_snippet  # noqa: E402

BARE_TIMER = """
import sys, time
started = time.perf_counter()
exec(sys.stdin.read())
print(f"BARE {time.perf_counter() - started:.4f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    stack = Devstack(VAR_DIR / "devstack", port=free_port()).start()
    try:
        state = stack.seed()
        key = state["keys"]["writer"]
        uri = f"runs:/{state['run_id']}/model"
        portal, bare = [], []
        for index in range(args.runs + 1):  # the first of each warms the server up
            request = registration_validate(
                model_uri=uri,
                model_name=f"bench_portal_{index}",
                token_id=f"BENCH-{index}",
                metric_name="accuracy",
                baseline_value="0.92",
            )
            started = time.perf_counter()
            check = RegistrationCheck(stack.url, key, request, idempotency_key=f"bench-{index}")
            results = check.run()
            elapsed = time.perf_counter() - started
            assert all(r.status in ("pass", "warn") for r in results), [(r.name, r.cause) for r in results]
            if index:
                portal.append(elapsed)

            bare_request = registration_validate(
                model_uri=uri,
                model_name=f"bench_bare_{index}",
                token_id=f"BENCH-{index}",
                metric_name="accuracy",
                baseline_value="0.92",
            )
            snippet = python_snippet(
                registry_url=stack.url,
                request=bare_request,
                source=check.source,
                run_id=check.run_id,
                model_id=check.model_id,
            )
            # The bare calls run in a process with MLflow already imported; only the calls are timed.
            env = dict(os.environ, HOKUSAI_API_KEY=key, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
            prelude = "import mlflow, mlflow.tracking\n"
            out = subprocess.run(
                [sys.executable, "-c", prelude + BARE_TIMER],
                input=snippet,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            line = next((x for x in out.stdout.splitlines() if x.startswith("BARE ")), None)
            assert line, out.stderr[-2000:]
            if index:
                bare.append(float(line.split()[1]))

        p, b = statistics.median(portal), statistics.median(bare)
        print(f"\n### Registration: portal (checked) vs bare MlflowClient calls, median of {args.runs}\n")
        print("| path | median | min | max | HTTP calls |")
        print("|---|---:|---:|---:|---|")
        print(
            f"| portal: pre-checks + register + verify | {p * 1000:.0f} ms | {min(portal) * 1000:.0f} ms | {max(portal) * 1000:.0f} ms | 11 |"
        )
        print(
            f"| bare MlflowClient (the rendered snippet) | {b * 1000:.0f} ms | {min(bare) * 1000:.0f} ms | {max(bare) * 1000:.0f} ms | 10+ (search, 2 creates, READY wait, 6 tags) |"
        )
        print(f"\nregister: portal {p * 1000:.0f} ms vs bare {b * 1000:.0f} ms = {p / b:.2f}x (target <= 1.5x)")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
