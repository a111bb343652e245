"""Benchmark: importing a plan and opening it, over HTTP through gunicorn, as a support engineer meets it.

    .venv/bin/python bench/importer.py [--repeat 3] [--scale 1.0]

It migrates the database of this environment (the embedded SQLite unless DATABASE_URL says otherwise),
creates a support user, starts gunicorn (2 workers × 4 threads) and, for inputs that grow, uploads each
plan to /triage/import/ and then GETs the investigation it made. Each figure is the median client time of
`--repeat` runs. The shapes are the ones that were quadratic: blank lines in a section (patterns that
spanned lines, ftfy line by line), heading lines (Python-Markdown's tables extension when the page
renders), reported issues matched to verdicts. Time that grows 2x per 2x of input is linear; 4x is
quadratic. Last line: `importer: worst <s> s (<kind> at <KiB> KiB), growth per doubling <x>`."""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
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

from accounts.roles import Role  # noqa: E402
from accounts.services import user_create  # noqa: E402
from devstack.server import free_port  # noqa: E402

SEED = (ROOT / "tests" / "fixtures" / "lscor-investigation-plan.md").read_text()
PASSWORD = "bench importer password 1"


def blank_lines(n: int) -> str:
    """A section of blank lines with nothing after them (where `^\\s*` patterns were quadratic)."""
    return SEED.replace("## Reproduction Steps", "## Environment\n" + "\n" * n + "## Reproduction Steps", 1)


def headings(n: int) -> str:
    return SEED.replace("## Reproduction Steps", "## Reproduction Steps\n" + "### a\n#### b\n" * (n // 2), 1)


def findings(n: int) -> str:
    reported = "".join(f"- **Issue alpha{i} beta{i}** - gamma{i}\n" for i in range(n))
    verdicts = "".join(f"#### {i}. Issue alpha{i} beta{i} - **VERIFIED**\n" for i in range(n))
    plan = SEED.replace("### Reported Issues:\n", "### Reported Issues:\n" + reported, 1)
    return plan.replace("## Investigation Status\n", "## Investigation Status\n" + verdicts, 1)


SHAPES = {
    "blank lines": (blank_lines, [20_000, 40_000, 80_000, 160_000]),
    "heading lines": (headings, [2_000, 4_000, 8_000, 16_000]),
    "findings": (findings, [25, 50, 100, 190]),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every input size (0.25 for old code)")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    username = f"bench-importer-{os.getpid()}"
    user_create(username=username, email=f"{username}@example.com", password=PASSWORD, role=Role.SUPPORT)
    port = free_port()
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "hokusai_portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--timeout",
            "600",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                session.get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        login = session.get(f"{base}/accounts/login/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
        session.post(
            f"{base}/accounts/login/",
            {"login": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            timeout=30,
        )

        def import_and_open(text: str) -> tuple[float, float, int]:
            page = session.get(f"{base}/triage/import/", timeout=30)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
            started = time.perf_counter()
            answer = session.post(
                f"{base}/triage/import/",
                data={"csrfmiddlewaretoken": token, "again": "on"},  # the same input is imported each run
                files={"file": ("plan.md", text.encode())},
                allow_redirects=False,
                timeout=600,
            )
            imported = time.perf_counter() - started
            if answer.status_code != 302:
                said = re.search(r'role="alert"[^>]*>(.*?)</div>', answer.text, re.S)
                return imported, 0.0, f"{answer.status_code}: {said[1].strip()[:80] if said else ''}"
            started = time.perf_counter()
            opened = session.get(base + answer.headers["Location"], timeout=600)
            return imported, time.perf_counter() - started, opened.status_code

        print("| input | size | import (POST) | open (GET) | answer |")
        print("|---|---:|---:|---:|---|")
        worst, growth = (0.0, "", 0), []
        for kind, (make, sizes) in SHAPES.items():
            previous = None
            for n in (max(1, int(size * args.scale)) for size in sizes):
                text = make(n)
                runs = [import_and_open(text) for _ in range(args.repeat)]
                post = statistics.median(r[0] for r in runs)
                get = statistics.median(r[1] for r in runs)
                total = post + get
                print(
                    f"| {kind} × {n:,} | {len(text.encode()) // 1024} KiB | {post:.2f} s | {get:.2f} s | {runs[0][2]} |"
                )
                if total > worst[0]:
                    worst = (total, kind, len(text.encode()) // 1024)
                if previous:
                    growth.append(total / previous)
                previous = total
        print(
            f"\nimporter: worst {worst[0]:.2f} s ({worst[1]} at {worst[2]} KiB), "
            f"growth per doubling median {statistics.median(growth):.1f}x, max {max(growth):.1f}x"
        )
    finally:
        session.close()
        gunicorn.terminate()
        try:
            gunicorn.wait(15)
        except subprocess.TimeoutExpired:
            gunicorn.kill()


if __name__ == "__main__":
    main()
