"""Benchmark: many developers watching their checks at once (issue 27), over HTTP through the production set.

    .venv/bin/python bench/watchers.py [--watchers 100,1000] [--largest 4000] [--sync-watchers 100]
                                       [--checks 20] [--window 10] [--web-processes 1]

Starts `make production` (PostgreSQL, a fresh database; Redis; 2 worker processes; beat; gunicorn with
`--web-processes` uvicorn workers, WEB_SERVER=asgi) against a devstack registry started here. Each round opens
N check pages at once, as N browser tabs do: the page, then its htmx long poll, again and again until the
verdict (286); a 5xx or a dropped connection is counted and retried after 1 s, as static/js/portal.js does.
`--checks` of the pages watch checks that run during the round (enqueued over `--window` seconds, one tab
each); the others watch checks that stay queued (held, idle). Prints per round: watchers held while the
checks run, verdict seen on the page after the worker saved it (the run's finished_at; p50/p95/max),
errors (5xx, other statuses), dropped connections, web CPU (opening the pages; per second of holding;
during the checks) and web memory per 1,000 watchers. Rounds go on doubling from the largest `--watchers`
up to `--largest` while a round holds (every watcher held, no error, no drop). Then one round of
`--sync-watchers` on the sync path (WEB_SERVER=wsgi: gthread workers, CHECK_LONG_POLL_SLOTS long polls,
the rest polling every 500 ms). Last line: `watchers: <N> held, verdict p95 <ms> ms, errors <n>` for the
largest N that held on the ASGI path.

Users, keys, runs and sessions are made with the ORM in this process (signing up 1,000 developers over HTTP
would measure password hashing); pages, polls and checks go through HTTP, the broker and the workers."""

import argparse
import asyncio
import html
import os
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
POSTGRES = "postgres://postgres@127.0.0.1:5432"
REDIS = os.getenv("WATCHERS_REDIS_URL", "redis://127.0.0.1:6379/15")
DATABASE = f"portal_watchers_{uuid.uuid4().hex[:8]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REGISTRY_PORT = _free_port()
# This process makes users, keys and runs in the set's database: the same database, broker and secrets.
SECRETS = {"SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
os.environ.update(
    DATABASE_URL=f"{POSTGRES}/{DATABASE}",
    CELERY_BROKER_URL=REDIS,
    HOKUSAI_REGISTRY_URL=f"http://127.0.0.1:{REGISTRY_PORT}",
    DJANGO_SETTINGS_MODULE="hokusai_portal.settings",
    **SECRETS,
)

import logging  # noqa: E402

import django  # noqa: E402

from hokusai_portal import runtime  # noqa: E402

runtime.prepare()
django.setup()
logging.getLogger("onboarding").setLevel(logging.WARNING)  # not a line per key saved

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.roles import Role  # noqa: E402
from devstack.server import Devstack  # noqa: E402
from onboarding import services  # noqa: E402
from onboarding.models import ApiKey, CheckRun  # noqa: E402
from tests.portal_processes import ProcessSet, command_line, production_env, wait_healthy  # noqa: E402

OPEN_AT_ONCE = 50  # pages opened at once while the round ramps up (a crowd arriving, not a SYN flood)
CLIENT_TIMEOUT = 60


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


class Page:
    """What a round's watchers saw, and the HTTP they used (raw HTTP/1.1, one connection per request)."""

    def __init__(self, port: int):
        self.port = port
        self.in_flight = 0
        self.requests = 0
        self.errors: list[str] = []
        self.dropped = 0
        self.verdict_at: dict[int, float] = {}

    async def get(self, path: str, cookie: str, htmx: bool) -> tuple[int, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nCookie: sessionid={cookie}\r\n"
                f"{'HX-Request: true' + chr(13) + chr(10) if htmx else ''}Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), CLIENT_TIMEOUT)
        finally:
            writer.close()
        head, separator, body = raw.partition(b"\r\n\r\n")
        if not separator:
            raise ConnectionResetError("closed before a whole answer")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if length and int(length[1]) != len(body):
            raise ConnectionResetError("closed in the middle of the body")
        return int(head.split()[1]), body.decode(errors="replace")

    async def watch(self, run_id: int, cookie: str, opened: asyncio.Semaphore) -> None:
        """One browser tab on a check page until its verdict."""
        path = f"/onboarding/checks/{run_id}/"
        async with opened:  # the page itself, as a browser loads it
            status, body = await self._retrying(path, cookie, htmx=False)
        while True:
            found = re.search(r'hx-get="([^"]+)" hx-trigger="(load(?: delay:500ms)?)"', body)
            if status == 286 or not found:
                self.verdict_at[run_id] = time.time()
                return
            path, delay = html.unescape(found[1]), 0.5 if "delay" in found[2] else 0.0
            if delay:
                await asyncio.sleep(delay)
            status, answer = await self._retrying(path, cookie, htmx=True)
            while status == 204:  # the wait ran out, nothing new: the page asks again at once (portal.js)
                status, answer = await self._retrying(path, cookie, htmx=True)
            body = answer

    async def _retrying(self, path: str, cookie: str, htmx: bool) -> tuple[int, str]:
        while True:
            self.in_flight += 1
            self.requests += 1
            try:
                status, body = await self.get(path, cookie, htmx)
            except (OSError, TimeoutError):  # refused, reset, cut short, no answer in CLIENT_TIMEOUT
                self.dropped += 1
                await asyncio.sleep(1)
                continue
            finally:
                self.in_flight -= 1
            if status in (200, 204, 286):
                return status, body
            self.errors.append(str(status))
            await asyncio.sleep(1)


def web_pids(portal: ProcessSet) -> list[int]:
    return [pid for pid in portal.pids("gunicorn") if "hokusai_portal." in command_line(pid)]


def web_cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(field) for field in fields[11:15]) / ticks
    return total


def web_rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += int(re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)[1])
        except (OSError, TypeError):
            continue
    return total / 1024


def developers(count: int, key: str | None) -> list[tuple]:
    """(user, session cookie) for `count` new developers, each with `key` saved when given."""
    made = []
    group, _ = Group.objects.get_or_create(name=Role.DEVELOPER.value)
    for _ in range(count):
        user = get_user_model().objects.create_user(username=f"watch-{uuid.uuid4().hex[:10]}", password=None)
        user.groups.add(group)
        if key:
            services.api_key_save(user=user, raw_key=key)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        made.append((user, session.session_key))
    return made


def queued_run(user) -> CheckRun:
    """A run as the connectivity page makes it, with a long queue grace: the sweep leaves it alone."""
    api_key = ApiKey.objects.filter(user=user).first()
    return CheckRun.objects.create(
        user=user,
        registry_url=settings.HOKUSAI_REGISTRY_URL,
        key_masked=api_key.masked if api_key else "",
        deadline_at=timezone.now() + timedelta(hours=1),
    )


def one_round(portal: ProcessSet, port: int, key: str, watchers: int, checks: int, window: float) -> dict:
    checks = min(checks, watchers)
    active = developers(checks, key)
    idle_owners = developers(max(1, (watchers - checks) // 50), None) if watchers > checks else []
    active_runs = [(queued_run(user), cookie) for user, cookie in active]
    idle_runs = [(queued_run(user), cookie) for user, cookie in idle_owners]
    tabs = [(run.pk, cookie) for run, cookie in active_runs]
    tabs += [(idle_runs[i % len(idle_runs)][0].pk, idle_runs[i % len(idle_runs)][1]) for i in range(watchers - checks)]
    pids = web_pids(portal)
    page = Page(port)
    figures: dict = {"watchers": watchers, "checks": checks}

    async def drive() -> None:
        opened = asyncio.Semaphore(OPEN_AT_ONCE)
        for _ in range(20):  # warm: templates compiled, the pool and the listener up, before the baseline
            await page.get(f"/onboarding/checks/{tabs[0][0]}/", tabs[0][1], htmx=False)
        rss_before, cpu_before = web_rss_mb(pids), web_cpu_seconds(pids)
        started = time.monotonic()
        tasks = [asyncio.create_task(page.watch(run_id, cookie, opened)) for run_id, cookie in tabs]
        while page.requests < watchers * 2 and time.monotonic() - started < 300:  # every page and its first poll
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        figures["open_s"] = time.monotonic() - started
        cpu_open = web_cpu_seconds(pids)
        figures["open_cpu_ms_per_watcher"] = (cpu_open - cpu_before) * 1000 / watchers
        await asyncio.sleep(5)  # holding, nothing changing
        cpu_held = web_cpu_seconds(pids)
        figures["hold_cpu_ms_per_s_per_1000"] = (cpu_held - cpu_open) * 1000 / 5 * 1000 / watchers
        figures["held"] = page.in_flight
        figures["rss_mb"] = web_rss_mb(pids)
        figures["rss_mb_per_1000"] = (figures["rss_mb"] - rss_before) * 1000 / watchers
        # The checks run under them, enqueued over the window as developers would press the button.
        for n, (run, _) in enumerate(active_runs):
            await asyncio.sleep(max(0.0, started + figures["open_s"] + 6 + n * window / checks - time.monotonic()))
            await asyncio.to_thread(services.check_run_enqueue, run_id=run.pk)
        checks_started = time.monotonic()
        await asyncio.wait(tasks[:checks], timeout=120)
        figures["checks_cpu_s"] = web_cpu_seconds(pids) - cpu_held
        figures["checks_s"] = time.monotonic() - checks_started
        figures["held_after"] = page.in_flight
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(drive())
    # The idle runs end; nobody watches them any more.
    CheckRun.objects.filter(pk__in=[run.pk for run, _ in idle_runs]).update(
        status=CheckRun.Status.LOST, cause="WORKERS_UNAVAILABLE", finished_at=timezone.now()
    )
    finished = dict(CheckRun.objects.filter(pk__in=[run.pk for run, _ in active_runs]).values_list("pk", "finished_at"))
    delays = [
        (page.verdict_at[run_id] - finished[run_id].timestamp()) * 1000
        for run_id in finished
        if finished[run_id] is not None and run_id in page.verdict_at
    ]
    figures.update(
        verdicts=len(delays),
        p50=pct(delays, 0.5),
        p95=pct(delays, 0.95),
        max=max(delays) if delays else float("nan"),
        errors=len(page.errors),
        error_kinds=sorted(set(page.errors)),
        dropped=page.dropped,
        requests=page.requests,
    )
    figures["holds"] = (
        figures["held"] >= watchers * 0.99 and not page.errors and not page.dropped and len(delays) == checks
    )
    return figures


def load_now() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def row(label: str, f: dict) -> str:
    return (
        f"| {label} | {f['watchers']} | {f['held']} | {f['verdicts']}/{f['checks']} | {f['p50']:.0f} | "
        f"{f['p95']:.0f} | {f['max']:.0f} | {f['errors']}{' ' + ','.join(f['error_kinds']) if f['errors'] else ''} | "
        f"{f['dropped']} | {f['open_cpu_ms_per_watcher']:.1f} | {f['hold_cpu_ms_per_s_per_1000']:.0f} | "
        f"{f['checks_cpu_s']:.1f} | {f['rss_mb']:.0f} ({f['rss_mb_per_1000']:+.0f}) | {f['requests']} |"
    )


def run_set(server: str, sizes: list[int], largest: int, args, registry: Devstack, key: str, tmp: Path) -> list:
    port = _free_port()
    env = production_env(f"{POSTGRES}/{DATABASE}", REDIS, port, registry.url)
    env.update(SECRETS, WEB_SERVER=server, WEB_CONCURRENCY=str(args.web_processes))
    portal = ProcessSet(tmp / server, ["make", "production"], env)
    results = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=180, workers=2)
        queue = list(sizes)
        while queue:
            size = queue.pop(0)
            figures = one_round(portal, port, key, size, args.checks, args.window)
            results.append(figures)
            print(row(f"{server}, {load_now()}", figures), flush=True)
            if not queue and figures["holds"] and server == "asgi" and size * 2 <= largest:
                queue.append(size * 2)
    finally:
        portal.stop()
        portal.kill_everything()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watchers", default="100,1000", help="comma-separated N for the ASGI path")
    parser.add_argument("--largest", type=int, default=4000, help="keep doubling while a round holds, up to this")
    parser.add_argument("--sync-watchers", type=int, default=100, help="one round on the sync path (0: none)")
    parser.add_argument("--checks", type=int, default=20, help="checks run during a round, one tab each")
    parser.add_argument("--window", type=float, default=10, help="seconds over which they are enqueued")
    parser.add_argument("--web-processes", type=int, default=1)
    args = parser.parse_args()
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    print(f"#### check pages watched at once, {args.web_processes} web process(es); {load_now()} at the start\n")
    print(
        "| path | watchers | held | verdicts | verdict after save p50 ms | p95 | max | errors | dropped "
        "| web CPU ms per page opened | web CPU ms/s holding, per 1,000 | web CPU s during the checks "
        "| web RSS MB (per 1,000) | requests |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="watchers-") as tmp:
        registry = Devstack(Path(tmp) / "devstack", port=REGISTRY_PORT, workers=2)
        registry.start()
        try:
            key = registry.seed()["keys"]["writer"]
            sizes = [int(n) for n in args.watchers.split(",") if n.strip()]
            asgi = run_set("asgi", sizes, args.largest, args, registry, key, Path(tmp))
            if args.sync_watchers:
                run_set("wsgi", [args.sync_watchers], 0, args, registry, key, Path(tmp))
        finally:
            registry.stop()
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    held = [f for f in asgi if f["holds"]]
    best = max(held, key=lambda f: f["watchers"]) if held else max(asgi, key=lambda f: f["held"])
    median_p95 = statistics.median([f["p95"] for f in held]) if held else float("nan")
    print(f"\n(ASGI rounds that held: {len(held)}; their median verdict p95 {median_p95:.0f} ms)")
    print(
        f"watchers: {best['watchers'] if held else best['held']} held, verdict p95 {best['p95']:.0f} ms, errors {best['errors']}"
    )


if __name__ == "__main__":
    main()
