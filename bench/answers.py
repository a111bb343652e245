"""Diagnosis: CPU per answer of each kind a check costs the web and the database, one request at a time.

    .venv/bin/python bench/answers.py [--repeat 200]

`bench/load.py` measures a check under load, where a machine near saturation inflates every figure (context
switches, more polls as steps spread out) and two runs differ by a third. This one asks the `make production`
set on Redis (2 gunicorn uvicorn workers, PostgreSQL, a devstack registry) one request at a time, so a
figure moves only when the code does: a finished check's page, its htmx partial (what a long poll renders),
the form's submit (its run then waits for the workers: their CPU per check is counted too, one check at a
time), a sync page (the connectivity form). Last line: `answers: check <ms> ms, page <ms> ms, partial <ms>
ms, workers <ms> ms per check` (web + database CPU per answer; the workers' per check)."""

import argparse
import html
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import (  # noqa: E402  (bench/load.py sets up Django and the path)
    POSTGRES,
    CountingUser,
    Devstack,
    ProcessSet,
    cpu_seconds,
    free_port,
    production_env,
    psycopg,
    wait_healthy,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    name = f"portal_answers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{POSTGRES}/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="answers-"))
    registry = Devstack(tmp / "devstack", port=free_port(), workers=2)
    registry.start()
    port = free_port()
    portal = None
    try:
        key = registry.seed()["keys"]["writer"]
        portal = ProcessSet(
            tmp / "set",
            ["make", "production"],
            production_env(database_url, "redis://127.0.0.1:6379/8", port, registry.url),
        )
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, timeout=180, workers=2)
        user = CountingUser(base, errors := [])
        address = f"answers-{uuid.uuid4().hex[:8]}@example.com"
        user.sign_up(address, "a long enough passphrase 42")
        with psycopg.connect(database_url) as db:
            db.execute("UPDATE account_emailaddress SET verified = true WHERE email = %s", [address])
        user.save_key(key)

        def measure(label: str, ask, repeat: int) -> float:
            for _ in range(5):  # warm: each gunicorn worker's first answers compile templates and queries
                ask()
            before = cpu_seconds(portal.marker)
            started = time.perf_counter()
            for _ in range(repeat):
                ask()
            wall = (time.perf_counter() - started) * 1000 / repeat
            after = cpu_seconds(portal.marker)
            spent = {kind: (after[kind] - before[kind]) * 1000 / repeat for kind in ("web", "database", "workers")}
            print(
                f"| {label} | {spent['web']:.1f} | {spent['database']:.1f} | {spent['workers']:.1f} | {wall:.1f} |",
                flush=True,
            )
            return spent

        run_id, _ = user.start_check_page()
        user.wait_for_state(run_id, {"passed", "failed"}, timeout=60)
        page_path = f"/onboarding/checks/{run_id}/"
        page = user.get(base + page_path).text
        poll = re.search(r'hx-get="([^"]+)"', page)
        partial_path = poll[1].replace("&amp;", "&") if poll else f"{page_path}?seen=queued"

        def submit_and_wait():
            """As a browser: the submit, the page it lands on, then the page's long polls until the verdict."""
            _, page = user.start_check_page()
            deadline = time.monotonic() + 60
            while not re.search(r'class="run" [^>]*data-status="(passed|failed|lost)"', page):
                assert time.monotonic() < deadline, "no verdict within 60 s"
                poll = re.search(r'hx-get="([^"]+)" hx-trigger="(load(?: delay:500ms)?)"', page)
                if poll and "delay" in poll[2]:
                    time.sleep(0.5)
                answer = user.get(base + html.unescape(poll[1]), headers={"HX-Request": "true"}, timeout=60)
                page = answer.text or page  # 204: nothing new, the page asks again

        print("| answer | web CPU ms | database CPU ms | workers CPU ms | wall ms |\n|---|---:|---:|---:|---:|")
        figures = {
            "page": measure("a finished check's page (GET)", lambda: user.get(base + page_path), args.repeat),
            "partial": measure(
                "its htmx partial (GET, what a long poll renders)",
                lambda: user.get(base + partial_path, headers={"HX-Request": "true"}),
                args.repeat,
            ),
            "form": measure(
                "the connectivity form (GET, a sync view)",
                lambda: user.get(base + "/onboarding/connectivity/"),
                args.repeat,
            ),
            "submit": measure(
                "a check: submit, its page, long polls to the verdict", submit_and_wait, max(10, args.repeat // 5)
            ),
        }
        if errors:
            print(f"5xx: {len(errors)}", file=sys.stderr)
        f = figures
        print(
            f"\nanswers: check {f['submit']['web'] + f['submit']['database']:.1f} ms, "
            f"page {f['page']['web'] + f['page']['database']:.1f} ms, "
            f"partial {f['partial']['web'] + f['partial']['database']:.1f} ms, "
            f"workers {f['submit']['workers']:.1f} ms per check"
        )
    finally:
        if portal is not None:
            portal.stop()
            portal.kill_everything()
        registry.stop()
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
