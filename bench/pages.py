"""Benchmark: server time and query count of the portal's pages on a large database, against the
Django admin changelist of investigations on the same data.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench100k
    .venv/bin/python manage.py migrate && .venv/bin/python manage.py seed_synthetic --investigations 100000
    DEBUG=0 SECRET_KEY=... FIELD_ENCRYPTION_KEYS=... .venv/bin/python bench/pages.py [--requests 30] [--rebuild]

With DEBUG=0 (as served) it collects the static files first if they are not collected yet.

Requests go through Django's test client in this process (server time: URL resolution, views, queries,
templates; no network): a diagnosis. With --http the same pages, and the admin's, are then fetched over
HTTP from gunicorn (2 workers × 4 threads, started here with this process's environment: run it with
PORTAL_ENV=production and its settings, plus SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 for plain
HTTP on this host) with a signed-in session cookie, as a browser meets them. Last line:
`pages: worst p95 <ms> ms, worst queries <n>, vs admin <ratio>x` (over HTTP when --http is given)."""

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")

import django  # noqa: E402

from hokusai_portal import runtime  # noqa: E402

runtime.prepare()
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from triage.models import Component, Investigation  # noqa: E402


def measure(client: Client, url: str, requests: int) -> tuple[float, float, int]:
    client.get(url, secure=True)  # warm-up
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url, secure=True)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        client.get(url, secure=True)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))]
    return statistics.median(timings), p95, len(queries)


def keeping_costs(user, pk: int, writes: int, rebuild: bool) -> None:
    """What the pre-aggregated stats cost: a change's extra time (the refresh after commit), their size,
    and (with --rebuild) a rebuild from scratch."""
    from django.db.models.signals import post_save

    from triage import services, stats
    from triage.models import InvestigationStat

    investigation = Investigation.objects.get(pk=pk)
    original = investigation.severity
    other = "low" if original != "low" else "high"

    def change_severity() -> list[float]:  # there and back: the data ends as it began
        timings = []
        for index in range(writes):
            started = time.perf_counter()
            services.investigation_update(
                investigation=investigation, actor=user, severity=other if index % 2 == 0 else original
            )
            timings.append((time.perf_counter() - started) * 1000)
        if investigation.severity != original:
            services.investigation_update(investigation=investigation, actor=user, severity=original)
        return sorted(timings)

    with_stats = change_severity()
    post_save.disconnect(dispatch_uid="stat_investigation_saved", sender=Investigation)
    try:
        without = change_severity()
    finally:
        stats.connect()
    stats.refresh_investigations([pk])
    print("\n### What the stats cost to keep\n")
    print(
        f"- a change to an investigation (severity, through the service): median {statistics.median(with_stats):.1f} ms "
        f"with the stats refresh, {statistics.median(without):.1f} ms without"
    )
    rows = InvestigationStat.objects.count()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_total_relation_size('triage_investigationstat'), pg_total_relation_size('triage_investigation')"
            )
            stat_bytes, investigation_bytes = cursor.fetchone()
        print(
            f"- size: {rows:,} rows, {stat_bytes / 2**20:.0f} MB with indexes "
            f"(the investigations table: {investigation_bytes / 2**20:.0f} MB)"
        )
    else:
        print(f"- size: {rows:,} rows")
    if rebuild:
        started = time.perf_counter()
        stats.rebuild()
        print(
            f"- a rebuild from scratch (`manage.py rebuild_investigation_stats`): {time.perf_counter() - started:.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true", help="also time a full rebuild of the stats (~20 s at 100k)")
    parser.add_argument("--http", action="store_true", help="also measure over HTTP through gunicorn")
    args = parser.parse_args()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    if settings.DEBUG:
        print("note: DEBUG is on (queries are recorded, templates not cached): run with DEBUG=0 for served figures")
    elif not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)
    total = Investigation.objects.count()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    per_page = 50
    deep = max(1, (total // per_page) // 2)
    quarter_ago = (date.today() - timedelta(days=100)).isoformat()
    component = Component.objects.order_by("pk").values_list("pk", flat=True).first() or ""
    some = Investigation.objects.order_by("-id").values_list("pk", flat=True).first()
    ours = {
        "dashboard": "/dashboard/",
        "dashboard filtered": f"/dashboard/?start={quarter_ago}&severity=high&component={component}",
        "list page 1": "/triage/",
        "list filter": "/triage/?severity=critical&status=investigating",
        "list search": "/triage/?q=registry",
        "list deep page": f"/triage/?page={deep}",
        "detail": f"/triage/{some}/",
    }
    admin = {
        "list page 1": "/admin/triage/investigation/",
        "list filter": "/admin/triage/investigation/?severity__exact=critical&status__exact=investigating",
        "list search": "/admin/triage/investigation/?q=registry",
        "list deep page": f"/admin/triage/investigation/?p={deep}",
    }
    print(
        f"\n### Pages on {connection.vendor}, {total:,} investigations ({args.requests} requests each, server time)\n"
    )
    print("| page | median | p95 | queries | admin p95 | admin queries | admin / ours (p95) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    worst_p95, worst_queries, ratios = 0.0, 0, []
    for name, url in ours.items():
        median, p95, queries = measure(client, url, args.requests)
        worst_p95, worst_queries = max(worst_p95, p95), max(worst_queries, queries)
        if name in admin:
            _, admin_p95, admin_queries = measure(client, admin[name], args.requests)
            ratios.append(admin_p95 / p95)
            print(
                f"| {name} | {median:.1f} ms | {p95:.1f} ms | {queries} | {admin_p95:.1f} ms | {admin_queries} | {admin_p95 / p95:.1f}x |"
            )
        else:
            print(f"| {name} | {median:.1f} ms | {p95:.1f} ms | {queries} | - | - | - |")
    other = Investigation.objects.order_by("-id").values_list("pk", flat=True)[1]  # not the detail page's
    keeping_costs(user, other, args.requests, args.rebuild)
    if args.http:
        from django.conf import settings as django_settings

        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        worst_p95, ratios = measure_over_http(ours, admin, cookie, args.requests, total)
        where = " over HTTP"
    else:
        where = ""
    print(f"\npages: worst p95 {worst_p95:.1f} ms{where}, worst queries {worst_queries}, vs admin {min(ratios):.1f}x")


def measure_over_http(ours: dict, admin: dict, cookie: str, count: int, total: int) -> tuple[float, list[float]]:
    """The same pages through gunicorn over loopback HTTP: client-side time, keep-alive, a session cookie."""
    import subprocess

    import requests
    from django.conf import settings as django_settings

    from devstack.server import free_port

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
            "--graceful-timeout",
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    try:
        session.cookies.set(django_settings.SESSION_COOKIE_NAME, cookie)
        deadline = time.monotonic() + 60
        while True:
            try:
                if session.get(f"{base}/healthz", timeout=5).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer"
            time.sleep(0.2)

        def over_http(url: str) -> tuple[float, float]:
            for _ in range(2):  # warm-up: each gunicorn worker
                session.get(base + url, timeout=30)
            timings = []
            for _ in range(count):
                started = time.perf_counter()
                response = session.get(base + url, timeout=30, allow_redirects=False)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            timings.sort()
            return statistics.median(timings), timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))]

        print(
            f"\n### Pages over HTTP: gunicorn 2 workers × 4 threads, {total:,} investigations ({count} requests each)\n"
        )
        print("| page | median | p95 | admin median | admin p95 | admin / ours (p95) |")
        print("|---|---:|---:|---:|---:|---:|")
        worst, ratios = 0.0, []
        for name, url in ours.items():
            median, p95 = over_http(url)
            worst = max(worst, p95)
            if name in admin:
                admin_median, admin_p95 = over_http(admin[name])
                ratios.append(admin_p95 / p95)
                print(
                    f"| {name} | {median:.1f} ms | {p95:.1f} ms | {admin_median:.1f} ms | {admin_p95:.1f} ms | {admin_p95 / p95:.1f}x |"
                )
            else:
                print(f"| {name} | {median:.1f} ms | {p95:.1f} ms | - | - | - |")
        return worst, ratios
    finally:
        session.close()
        gunicorn.terminate()
        try:
            gunicorn.wait(15)
        except subprocess.TimeoutExpired:
            gunicorn.kill()


if __name__ == "__main__":
    main()
