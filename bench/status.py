"""Benchmark: /status/ and /status.json over HTTP through gunicorn with 10 components × 400 days of rollups.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/benchstatus
    .venv/bin/python bench/status.py [--requests 200] [--keep]

It migrates the database of this environment, fills 10 components with 400 days of hourly and daily
rollups (96,000 + 4,000 rows) and 14 days of raw results, one a minute (201,600 rows), ANALYZEs, then
starts gunicorn (2 workers × 4 threads) twice: with the summary cached for STATUS_CACHE_SECONDS=10 (as
served) and with it off (every request computes it: the worst case, a cache miss each time). Client time
over loopback HTTP, keep-alive. It also checks uptime from the rollups against a recount of the raw
results. Last line: `status: p95 <ms> ms cached, <ms> ms uncached, uptime error <pct> %`."""

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")

import django  # noqa: E402

from hokusai_portal import runtime  # noqa: E402

runtime.prepare()
django.setup()

import requests  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from devstack.server import free_port  # noqa: E402
from status.models import PlatformComponent, ProbeResult, Rollup  # noqa: E402
from status.probes import utc_day_start, utc_hour_start  # noqa: E402
from status.selectors import component_statuses  # noqa: E402

COMPONENTS = 10
DAYS = 400
RAW_DAYS = 14


def fill(now: datetime) -> None:
    """Deterministic data: each component fails one probe in 400 on a fixed pattern."""
    PlatformComponent.objects.filter(slug__startswith="bench-").delete()
    components = [
        PlatformComponent.objects.create(slug=f"bench-{i}", name=f"Bench component {i}", position=100 + i, probe="")
        for i in range(COMPONENTS)
    ]
    today = utc_day_start(now)
    this_hour = utc_hour_start(now)
    for index, component in enumerate(components):
        hours, days, raws = [], [], []
        for h in range(DAYS * 24):
            start = this_hour - timedelta(hours=h)
            failures = 1 if (h + index) % 7 == 0 else 0
            hours.append(Rollup(component=component, kind="hour", start=start, total=60, successes=60 - failures))
        for d in range(DAYS):
            start = today - timedelta(days=d)
            days.append(Rollup(component=component, kind="day", start=start, total=1440, successes=1440 - 3 - d % 3))
        for m in range(RAW_DAYS * 24 * 60):
            raws.append(
                ProbeResult(
                    component=component, at=now - timedelta(minutes=m), ok=(m + index) % 400 != 0, latency_ms=40
                )
            )
        Rollup.objects.bulk_create(hours + days, batch_size=5000)
        ProbeResult.objects.bulk_create(raws, batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE status_rollup; ANALYZE status_proberesult;")


def uptime_error() -> float:
    """Rollups written by result_record for one component vs a recount of its raw results."""
    from status.probes import Outcome, result_record

    component = PlatformComponent.objects.create(slug="bench-recount", name="Recount", position=200, probe="")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    oks = []
    for minute in range(0, RAW_DAYS * 24 * 60, 3):
        ok = minute % 97 != 0
        oks.append(ok)
        result_record(component=component, at=now - timedelta(minutes=minute), outcome=Outcome(ok, 30))
    status = next(s for s in component_statuses(now) if s.component.pk == component.pk)
    recount = 100 * sum(oks) / len(oks)
    component.delete()
    return abs(status.uptime - recount)


def serve_and_measure(cache_seconds: int, requests_count: int) -> dict[str, tuple[float, float]]:
    port = free_port()
    env = dict(os.environ, STATUS_CACHE_SECONDS=str(cache_seconds))
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "hokusai_portal.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "2", "--threads", "4"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    figures = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                session.get(f"{base}/status.json", timeout=30)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        for path in ("/status/", "/status.json", "/status/badge/bench-0.svg"):
            for _ in range(4):  # warm-up: each worker
                session.get(base + path, timeout=30)
            timings = []
            for _ in range(requests_count):
                started = time.perf_counter()
                response = session.get(base + path, timeout=30)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            timings.sort()
            figures[path] = (statistics.median(timings), timings[int(0.95 * (len(timings) - 1))])
    finally:
        gunicorn.terminate()
        try:
            gunicorn.wait(15)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the bench rows (default: delete them at the end)")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    now = datetime.now(UTC)
    started = time.perf_counter()
    fill(now)
    print(
        f"filled {COMPONENTS} components: {Rollup.objects.count():,} rollups, {ProbeResult.objects.count():,} raw "
        f"results in {time.perf_counter() - started:.0f} s ({connection.vendor})"
    )
    error = uptime_error()
    results = {}
    for label, seconds in (("cached (10 s)", 10), ("uncached", 0)):
        results[label] = serve_and_measure(seconds, args.requests)
        print(f"\n{label}: client time over HTTP, {args.requests} requests each")
        print("| path | p50 ms | p95 ms |\n|---|---:|---:|")
        for path, (p50, p95) in results[label].items():
            print(f"| `{path}` | {p50:.1f} | {p95:.1f} |")
    print(f"\nuptime from rollups vs a recount of raw results: {error:.5f} percentage points apart")
    if not args.keep:
        PlatformComponent.objects.filter(slug__startswith="bench-").delete()
    worst = {label: max(p95 for _, p95 in figures.values()) for label, figures in results.items()}
    print(
        f"status: p95 {worst['cached (10 s)']:.1f} ms cached, {worst['uncached']:.1f} ms uncached, uptime error {error:.5f} %"
    )


if __name__ == "__main__":
    main()
