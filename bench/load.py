"""Benchmark: many developers' checks at once, over HTTP through the real process set.

    .venv/bin/python bench/load.py [--set embedded|redis|both] [--developers 10] [--checks 10] [--window 10]

- embedded: `make run` (gunicorn, one worker process of 8 threads, beat, the filesystem broker, SQLite,
  its own devstack registry);
- redis: `make production` with 2 worker processes of 8 threads on Redis, beat, PostgreSQL (a fresh
  database), gunicorn with 2 workers, against a devstack registry started here.

Each developer signs up, saves a key, then submits `--checks` checks spread over `--window` seconds in
one browser tab: it watches the current check's page as the browser does (the htmx long poll the partial
asks for; every 0.5 s where it asks for that) until the verdict or until the next check is due. The sets
serve WEB_SERVER from the environment (default asgi; `WEB_SERVER=wsgi` for the sync path). Prints, per set: submitted, verdicts, lost, 5xx,
submit → verdict (the run's own finished_at) p50/p95, the same as seen on the page for the checks
watched to the end, drain time (last submit → last verdict), and where the time went (queue wait, run; CPU per
check from the first submit on, by kind of process, with what signing up cost per developer apart; the web's
answers per check by method and status: its renders and 204s). Last line:
`load: <set> p95 <s> s, lost <n>, 5xx <n>` per set. Targets: 0 lost, 0 5xx, p95 ≤ 3 s on Redis."""

import argparse
import html
import json
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")

import django  # noqa: E402

from hokusai_portal import runtime  # noqa: E402

runtime.prepare()
django.setup()  # the helpers below import the test fixtures, which import models

import psycopg  # noqa: E402
import requests  # noqa: E402

from devstack.server import Devstack, free_port  # noqa: E402
from tests.portal_processes import POSTGRES, PortalUser, ProcessSet, production_env, wait_healthy  # noqa: E402

POLL_SECONDS = 0.5  # what the check page's htmx poll does
FINISHED = {"passed", "failed", "lost"}


class CountingUser(PortalUser):
    def __init__(self, base_url: str, errors: list):
        super().__init__(base_url)
        self.errors = errors
        self.answers: dict[str, int] = {}  # once the checks start: "<method> <status>" -> requests

    def request(self, *args, **kwargs):
        response = super().request(*args, **kwargs)
        if response.status_code >= 500:
            self.errors.append(response.status_code)
        for answer in [*response.history, response]:
            kind = f"{answer.request.method} {answer.status_code}"
            self.answers[kind] = self.answers.get(kind, 0) + 1
        return response

    def start_check_page(self) -> tuple[int, str]:
        """Submit a check as the browser does (the form is boosted: htmx posts it and is answered with the check
        page, its URL pushed); the run's id and the page the browser lands on."""
        path = "/onboarding/connectivity/"
        boosted = {"HX-Request": "true", "HX-Boosted": "true", "HX-Current-URL": self.base_url + path}
        response = self.form_post(path, {"model_name": ""}, headers=boosted)
        assert response.status_code == 200, response.status_code
        return int(re.search(r"/onboarding/checks/(\d+)/", response.headers["HX-Push-Url"]).group(1)), response.text


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def drive(base: str, key: str, developers: int, checks: int, window: float, verify, cpu) -> dict:
    """Each developer has one browser tab: submit a check, watch its page (the htmx poll, every 0.5 s)
    until the verdict or until the next check is due, then submit that one. Submit times are wall
    clock, so they compare with the runs' own `finished_at`. `cpu()` is read once the developers have
    signed up and saved their keys: what the checks cost is counted apart from what signing up costs
    (a password hash each, by design slow)."""
    errors: list[int] = []
    users = []
    for n in range(developers):
        user = CountingUser(base, errors)
        address = f"load-{uuid.uuid4().hex[:8]}-{n}@example.com"
        user.sign_up(address, "a long enough passphrase 42")
        verify(address)  # a key is saved only once the address is verified (the emailed link: tests/test_signup.py)
        user.save_key(key)
        user.answers.clear()
        users.append(user)
    cpu_at_start = cpu()
    submitted: dict[int, float] = {}
    seen: dict[int, float] = {}
    client_errors: list[str] = []
    lock = threading.Lock()
    start = time.time() + 0.5

    def watch(user: CountingUser, run_id: int, page: str, until: float) -> None:
        """As the page's htmx does: what the page asks (a long poll with ?seen=, or the same after 500 ms
        when the web has no slot free: WEB_SERVER=wsgi), then what each answer asks next; until the
        verdict, or until the next check is due (the tab navigates away: the poll is abandoned)."""
        path = f"/onboarding/checks/{run_id}/"
        while (left := until - time.time()) > 0:
            if page is not None:  # the page the browser landed on: its poll, or its verdict already
                page, landed = None, page
                if finished(landed):
                    return
                follow = next_poll(landed)
                if follow is None:
                    continue
                path, delayed = follow
                if delayed:
                    time.sleep(min(POLL_SECONDS, max(0.0, until - time.time())))
                continue
            try:
                page = user.get(user.base_url + path, headers={"HX-Request": "true"}, timeout=(5, left)).text
            except requests.Timeout:
                return
            if not page:  # 204: the wait ran out, nothing new; the page asks again at once
                continue
            if finished(page):
                return
            follow = next_poll(page)
            path = follow[0] if follow else f"/onboarding/checks/{run_id}/"
            if not follow or follow[1]:
                time.sleep(min(POLL_SECONDS, max(0.0, until - time.time())))

    def finished(page: str) -> bool:
        """The verdict is on the page (its time noted)."""
        state = re.search(r'id="run-(\d+)" class="run" [^>]*data-status="(\w+)"', page)
        if state and state[2] in FINISHED:
            with lock:
                seen.setdefault(int(state[1]), time.time())
            return True
        return False

    def next_poll(page: str) -> tuple[str, bool] | None:
        """What the page's htmx asks next, and whether after 500 ms."""
        poll = re.search(r'hx-get="([^"]+)" hx-trigger="(load(?: delay:500ms)?)"', page)
        return (html.unescape(poll[1]), "delay" in poll[2]) if poll else None

    def developer(index: int, user: CountingUser) -> None:
        try:
            submit_all(index, user)
        except Exception as exc:  # a client that gave up is counted, not silently dropped
            with lock:
                client_errors.append(f"{type(exc).__name__}: {exc}"[:200])

    def submit_all(index: int, user: CountingUser) -> None:
        for k in range(checks):
            at = start + (k + index / developers) * window / checks
            time.sleep(max(0.0, at - time.time()))
            sent = time.time()
            run_id, page = user.start_check_page()
            with lock:
                submitted[run_id] = sent
            last = k == checks - 1
            watch(user, run_id, page, sent + 120 if last else start + (k + 1 + index / developers) * window / checks)

    threads = [threading.Thread(target=developer, args=(i, u)) for i, u in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in client_errors:
        print(f"client error: {error}", file=sys.stderr)
    answers: dict[str, int] = {}
    for user in users:
        for kind, n in user.answers.items():
            answers[kind] = answers.get(kind, 0) + n
    return {
        "submitted": submitted,
        "seen": seen,
        "5xx": len(errors),
        "client_errors": len(client_errors),
        "cpu_at_start": cpu_at_start,
        "answers": answers,
    }


def summarise(driven: dict, rows: dict[int, tuple]) -> dict:
    """rows: run id -> (status, created, started, finished) in epoch seconds."""
    submitted, seen = driven["submitted"], driven["seen"]
    finished = {r: row for r, row in rows.items() if row[3] is not None and row[0] in FINISHED}
    saved = [finished[r][3] - submitted[r] for r in finished]
    watched = [seen[r] - submitted[r] for r in seen]
    return {
        "submitted": len(submitted),
        "verdicts": len(finished),
        "lost": sum(1 for row in rows.values() if row[0] == "lost") + len(submitted) - len(finished),
        "failed": sum(1 for row in rows.values() if row[0] == "failed"),
        "5xx": driven["5xx"],
        "client_errors": driven["client_errors"],
        "p50": pct(saved, 0.5),
        "p95": pct(saved, 0.95),
        "seen_p50": pct(watched, 0.5),
        "seen_p95": pct(watched, 0.95),
        "watched": len(watched),
        "drain": max(row[3] for row in finished.values()) - max(submitted.values()) if finished else float("nan"),
    }


CPU_KINDS = {
    # First: the web's gunicorn runs uvicorn workers (WEB_SERVER=asgi), whose command line names uvicorn too.
    "web": ("gunicorn hokusai_portal.",),
    # uvicorn's workers are spawned through multiprocessing: nothing else here spawns processes that way
    "registry": ("uvicorn", "mlflow server", "devstack serve", "multiprocessing.spawn"),
    "workers": ("celery -A hokusai_portal worker",),
    "beat": ("celery -A hokusai_portal beat",),
    "database": ("postgres:", "bin/postgres"),
    "broker": ("redis-server",),
}


OWN_KINDS = ("web", "workers", "beat")  # the set's own processes: counted only with its marker (see below)


def cpu_seconds(marker: str = "") -> dict[str, float]:
    """CPU seconds used so far by each kind of process on this machine (the bench itself as "bench"),
    with the time of children already reaped (PostgreSQL's per-connection backends end with their request).
    With `marker` (the set's PORTAL_VAR_DIR=...), web, workers and beat count only the set's own processes:
    on a shared machine other people's gunicorns and workers are not this set's."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys([*CPU_KINDS, "bench"], 0.0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        seconds = sum(int(field) for field in fields[11:15]) / ticks  # utime, stime, cutime, cstime
        if int(proc.name) == os.getpid():
            used["bench"] += seconds
            continue
        for kind, fragments in CPU_KINDS.items():
            if any(fragment in cmdline for fragment in fragments):
                if kind in OWN_KINDS and marker and not _has_marker(proc, marker):
                    break
                used[kind] += seconds
                break
    return used


def _has_marker(proc: Path, marker: str) -> bool:
    try:
        return marker.encode() in (proc / "environ").read_bytes()
    except OSError:
        return False


def cpu_per_check(before: dict[str, float], after: dict[str, float], checks: int) -> str:
    spent = {kind: (after[kind] - before[kind]) * 1000 / checks for kind in before}
    return ", ".join(f"{kind} {ms:.0f}" for kind, ms in sorted(spent.items(), key=lambda kv: -kv[1]) if ms >= 1)


def costs(before: dict[str, float], driven: dict, after: dict[str, float], developers: int) -> str:
    """CPU per check from the first submit on; signing up (a password hash, the emailed link, the key) apart;
    and what the web answered per check (its renders and its 204s: nothing new before the wait ran out)."""
    checks = len(driven["submitted"])
    answers = ", ".join(f"{kind} {n / checks:.1f}" for kind, n in sorted(driven["answers"].items()))
    return (
        f"CPU ms per check: {cpu_per_check(driven['cpu_at_start'], after, checks)}; "
        f"signing up, per developer: {cpu_per_check(before, driven['cpu_at_start'], developers)}; "
        f"requests per check: {answers}"
    )


def where_time_went(rows: dict[int, tuple]) -> str:
    queue = [started - created for _, created, started, _ in rows.values() if started]
    running = [finished - started for _, _, started, finished in rows.values() if started and finished]
    return (
        f"queue wait p50 {statistics.median(queue):.2f} s / p95 {pct(queue, 0.95):.2f} s; "
        f"run p50 {statistics.median(running):.2f} s / p95 {pct(running, 0.95):.2f} s"
    )


def bench_embedded(args, tmp: Path) -> tuple[dict, str]:
    port, registry_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "HOKUSAI_REGISTRY_URL")
    }
    env.update(PORTAL_PORT=str(port), REGISTRY_PORT=str(registry_port))
    portal = ProcessSet(tmp, ["make", "run"], env)
    try:
        portal.wait_for_log("Ready in", timeout=300)
        key = json.loads((portal.var_dir / "demo-credentials.json").read_text())["keys"]["writer"]
        before = cpu_seconds(portal.marker)

        def verify(address: str) -> None:
            with sqlite3.connect(portal.var_dir / "portal.sqlite3") as db:
                db.execute("UPDATE account_emailaddress SET verified = 1 WHERE email = ?", [address])

        driven = drive(
            f"http://127.0.0.1:{port}",
            key,
            args.developers,
            args.checks,
            args.window,
            verify,
            lambda: cpu_seconds(portal.marker),
        )
        cpu = costs(before, driven, cpu_seconds(portal.marker), args.developers)
        with sqlite3.connect(portal.var_dir / "portal.sqlite3") as db:
            found = db.execute(
                # julianday: this SQLite (3.40) predates unixepoch(..., 'subsec'); stored times are UTC
                "SELECT id, status, julianday(created_at), julianday(started_at), julianday(finished_at) "
                f"FROM onboarding_checkrun WHERE id IN ({','.join(map(str, driven['submitted']))})"
            ).fetchall()
        rows = {
            row[0]: (row[1], *(None if day is None else (day - 2440587.5) * 86400 for day in row[2:])) for row in found
        }
        return summarise(driven, rows), f"{where_time_went(rows)}; {cpu}"
    finally:
        portal.stop()
        portal.kill_everything()


def report_unfinished(db, submitted: dict[int, float]) -> None:
    """A check without a verdict when the drive ended, or lost: what the database says of it (before the bench's
    database is dropped), so that a lost check can be diagnosed."""
    for row in db.execute(
        "SELECT id, status, cause, attempt, worker, enqueue_error, created_at, started_at, heartbeat_at, finished_at "
        "FROM onboarding_checkrun WHERE id = ANY(%s) AND (finished_at IS NULL OR status = 'lost')",
        (list(submitted),),
    ):
        print(f"unfinished or lost: {row}", file=sys.stderr)


def bench_redis(args, tmp: Path) -> tuple[dict, str]:
    name = f"portal_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{POSTGRES}/{name}"
    registry = Devstack(tmp / "devstack", port=free_port(), workers=2)
    registry.start()
    port = free_port()
    portal = None
    try:
        key = registry.seed()["keys"]["writer"]
        redis = "redis://127.0.0.1:6379/8"
        portal = ProcessSet(
            tmp / "set", ["make", "production"], production_env(database_url, redis, port, registry.url)
        )
        wait_healthy(f"http://127.0.0.1:{port}", timeout=180, workers=2)
        before = cpu_seconds(portal.marker)

        def verify(address: str) -> None:
            with psycopg.connect(database_url) as db:
                db.execute("UPDATE account_emailaddress SET verified = true WHERE email = %s", [address])

        driven = drive(
            f"http://127.0.0.1:{port}",
            key,
            args.developers,
            args.checks,
            args.window,
            verify,
            lambda: cpu_seconds(portal.marker),
        )
        cpu = costs(before, driven, cpu_seconds(portal.marker), args.developers)
        with psycopg.connect(database_url) as db:
            found = db.execute(
                "SELECT id, status, extract(epoch FROM created_at), extract(epoch FROM started_at), "
                "extract(epoch FROM finished_at) FROM onboarding_checkrun WHERE id = ANY(%s)",
                (list(driven["submitted"]),),
            ).fetchall()
            report_unfinished(db, driven["submitted"])
        rows = {row[0]: tuple(v if isinstance(v, str) or v is None else float(v) for v in row[1:]) for row in found}
        return summarise(driven, rows), f"{where_time_went(rows)}; {cpu}"
    finally:
        if portal is not None:
            portal.stop()
            portal.kill_everything()
        registry.stop()
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", choices=["embedded", "redis", "both"], default="both")
    parser.add_argument("--developers", type=int, default=10)
    parser.add_argument("--checks", type=int, default=10)
    parser.add_argument("--window", type=float, default=10)
    args = parser.parse_args()
    sets = ["embedded", "redis"] if args.set == "both" else [args.set]
    print(f"#### {args.developers} developers × {args.checks} checks within {args.window:.0f} s, over HTTP\n")
    print(
        "| set | submitted | verdicts | lost | failed | 5xx | submit → verdict p50 | p95 "
        "| seen on the page p50 / p95 (watched) | drain | where the time went |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    summary = []
    for name in sets:
        with tempfile.TemporaryDirectory(prefix=f"load-{name}-") as tmp:
            result, went = (bench_embedded if name == "embedded" else bench_redis)(args, Path(tmp))
        print(
            f"| {name} | {result['submitted']} | {result['verdicts']} | {result['lost']} | {result['failed']} | "
            f"{result['5xx']} | {result['p50']:.2f} s | {result['p95']:.2f} s | {result['seen_p50']:.2f} / "
            f"{result['seen_p95']:.2f} s ({result['watched']}) | {result['drain']:.2f} s | {went} |",
            flush=True,
        )
        summary.append(
            f"{name} p95 {result['p95']:.2f} s, lost {result['lost']}, 5xx {result['5xx']}, "
            f"client errors {result['client_errors']}"
        )
    print("\nload: " + "; ".join(summary))


if __name__ == "__main__":
    main()
