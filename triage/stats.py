"""Pre-aggregated investigation counts, so the dashboard reads a few thousand small rows instead of
every investigation and finding (see `InvestigationStat`).

A *day* row sums the investigations created on that day (in the portal's time zone) with one
severity; a *month* row is the sum of that month's day rows, and an *all* row the sum of every month. `component` NULL is every
investigation; a component's own slice counts the investigations tagged with it. Metrics:

    status    key = investigation status          n = investigations
    finding   key = finding status                n = findings
    created   key = Monday of the week created    n = investigations
    resolved  key = Monday of the week resolved   n = investigations
    ttr       key = log bucket of created -> resolved seconds; n = investigations, total = seconds
    review    key = next review date of the open ones  n = investigations (overdue: key < today)

Time to resolution is a histogram: bucket b holds durations in [GAMMA**(b-1), GAMMA**b) seconds, and
its value is the mean of what fell in it (`total / n`), so a percentile read from it is within
GAMMA - 1 (5 %) of the exact one, and exact when a bucket's durations are equal.

Kept current by signals (`connect`): a save or delete of an investigation or a finding, or a change to
an investigation's components, refreshes the (day, severity) keys it touches once its transaction
commits, under one lock so concurrent refreshes cannot interleave. Writes that bypass signals
(`QuerySet.update`, `bulk_create`) must call `refresh_investigations()` or `rebuild()`.

`ensure_built` (after `migrate`) fills an empty table: a migration that changes what the rows mean
empties the table, and the next `migrate` rebuilds it."""

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save
from django.utils import timezone

from hokusai_portal.locks import transaction_lock
from hokusai_portal.query import local_midnight

from .models import Finding, Investigation, InvestigationStat

logger = logging.getLogger(__name__)
GAMMA = 1.05
BATCH = 5000
Key = tuple[date, str]  # (day created, severity)
Metric = InvestigationStat.Metric
Kind = InvestigationStat.Kind


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


day_start = local_midnight  # where a day of created_at begins (the stats and the filters agree)


def month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def week_of(moment: datetime) -> date:
    day = local_day(moment)
    return day - timedelta(days=day.weekday())


def bucket_of(seconds: float) -> int:
    return 0 if seconds < 1 else 1 + int(math.log(seconds) / math.log(GAMMA))


def _key(created: datetime | None, severity: str | None) -> Key | None:
    return (local_day(created), severity) if created and severity else None


def key_of(investigation: Investigation) -> Key | None:
    return _key(investigation.__dict__.get("created_at"), investigation.__dict__.get("severity"))


# -- computing rows from the source tables -------------------------------------------------------

Row = tuple  # (kind, period, severity, component id or None, metric, key)
ALL_TIME = date(1, 1, 1)  # the period of the all-time rows


def _collect(investigations: QuerySet[Investigation]) -> dict[Row, list]:
    """The day rows {row: [n, total]} of these investigations."""
    components = defaultdict(list)
    for investigation_id, component_id in Investigation.components.through.objects.filter(
        investigation__in=investigations.values("id")
    ).values_list("investigation_id", "component_id"):
        components[investigation_id].append(component_id)
    findings = defaultdict(list)
    for investigation_id, status, n in (
        Finding.objects.filter(investigation__in=investigations.values("id"))
        .values("investigation_id", "status")
        .annotate(n=Count("id"))
        .values_list("investigation_id", "status", "n")
        .order_by()
    ):
        findings[investigation_id].append((status, n))
    rows: dict[Row, list] = defaultdict(lambda: [0, 0.0])
    for pk, created, severity, status, resolved, next_review in investigations.values_list(
        "id", "created_at", "severity", "status", "resolved_at", "next_review"
    ).order_by():
        day = local_day(created)
        facts = [(Metric.STATUS, status, 1, 0.0), (Metric.CREATED, week_of(created).isoformat(), 1, 0.0)]
        facts += [(Metric.FINDING, finding_status, n, 0.0) for finding_status, n in findings.get(pk, ())]
        if resolved is not None:
            seconds = (resolved - created).total_seconds()
            facts.append((Metric.RESOLVED, week_of(resolved).isoformat(), 1, 0.0))
            facts.append((Metric.TTR, f"{bucket_of(seconds):04d}", 1, seconds))
        if next_review is not None and status in Investigation.OPEN_STATUSES:
            facts.append((Metric.REVIEW, next_review.isoformat(), 1, 0.0))
        for component in (None, *components.get(pk, ())):
            for metric, key, n, total in facts:
                row = rows[(Kind.DAY, day, severity, component, metric, key)]
                row[0] += n
                row[1] += total
    return rows


def _roll_up(day_rows: dict[Row, list], into: dict[Row, list] | None = None) -> dict[Row, list]:
    """Add day rows (or their differences) to their month and all-time rows."""
    into = into if into is not None else defaultdict(lambda: [0, 0.0])
    for (_, day, severity, component, metric, key), (n, total) in day_rows.items():
        for row in (
            (Kind.MONTH, day.replace(day=1), severity, component, metric, key),
            (Kind.ALL, ALL_TIME, severity, component, metric, key),
        ):
            into[row][0] += n
            into[row][1] += total
    return into


def _insert(rows: dict[Row, list]) -> int:
    InvestigationStat.objects.bulk_create(
        (
            InvestigationStat(
                kind=kind,
                period=period,
                severity=severity,
                component_id=component,
                metric=metric,
                key=key,
                n=n,
                total=total,
            )
            for (kind, period, severity, component, metric, key), (n, total) in rows.items()
            if n > 0
        ),
        batch_size=BATCH,
    )
    return len(rows)


def _apply(delta: dict[Row, list], existing: dict[Row, tuple] | None = None) -> None:
    """Add `delta` {row: [n, total]} to the stored rows ({row: (pk, n, total)}, read here unless
    given): rows that fall to zero go, missing ones are created."""
    delta = {row: change for row, change in delta.items() if change[0] or change[1]}
    if not delta:
        return
    if existing is None:
        existing = {
            (kind, period, severity, component, metric, key): (pk, n, total)
            for pk, kind, period, severity, component, metric, key, n, total in InvestigationStat.objects.filter(
                kind__in={row[0] for row in delta},
                period__in={row[1] for row in delta},
                severity__in={row[2] for row in delta},
                metric__in={row[4] for row in delta},
                key__in={row[5] for row in delta},
            ).values_list("pk", "kind", "period", "severity", "component_id", "metric", "key", "n", "total")
        }
    # A changed row is deleted and written anew: two statements for any number of rows (bulk_update's
    # CASE WHEN per row costs more in Python than the database spends on it).
    stale, fresh = [], {}
    for row, (dn, dtotal) in delta.items():
        if row in existing:
            pk, n, total = existing[row]
            stale.append(pk)
            fresh[row] = [n + dn, total + dtotal]
        else:
            fresh[row] = [dn, dtotal]
    if stale:
        InvestigationStat.objects.filter(pk__in=stale).delete()
    _insert(fresh)


def refresh_keys(keys: Iterable[Key]) -> None:
    """Recompute the day rows of these (day, severity) keys from the source and write what differs
    from the stored ones, to them and to their month and all-time rows (a change to one investigation
    touches a few dozen rows, whatever the size of the data)."""
    keys = sorted({k for k in keys if k})
    for offset in range(0, len(keys), 200):
        chunk = keys[offset : offset + 200]
        source, days = Q(), Q()
        for day, severity in chunk:
            source |= Q(
                created_at__gte=day_start(day), created_at__lt=day_start(day + timedelta(days=1)), severity=severity
            )
            days |= Q(period=day, severity=severity)
        with transaction.atomic():
            transaction_lock("triage.investigation_stat")
            old = {
                (Kind.DAY, period, severity, component, metric, key): (pk, n, total)
                for pk, period, severity, component, metric, key, n, total in InvestigationStat.objects.filter(
                    days, kind=Kind.DAY
                ).values_list("pk", "period", "severity", "component_id", "metric", "key", "n", "total")
            }
            days_delta = defaultdict(lambda: [0, 0.0], _collect(Investigation.objects.filter(source)))
            for row, (_, n, total) in old.items():
                days_delta[row][0] -= n
                days_delta[row][1] -= total
            _apply(days_delta, existing=old)
            _apply(_roll_up(days_delta))


def refresh_investigations(ids: Iterable[int]) -> None:
    """For writes that bypass signals: refresh the keys of these investigations as they are now."""
    ids = list(ids)
    refresh_keys(set().union(*(_investigation_keys(ids[i : i + 500]) for i in range(0, len(ids), 500))))


def rebuild() -> int:
    """Every row from scratch, month by month of creation. Returns how many day rows it wrote."""
    written, above = 0, defaultdict(lambda: [0, 0.0])
    with transaction.atomic():
        transaction_lock("triage.investigation_stat")
        InvestigationStat.objects.all().delete()
        # Only the months that hold investigations: one dated 9999 next to one dated 2025 is two months
        # to visit, not ~96,000.
        months = Investigation.objects.datetimes("created_at", "month", tzinfo=timezone.get_default_timezone())
        for month in (moment.date() for moment in months):
            next_month = month_after(month)
            day_rows = _collect(
                Investigation.objects.filter(created_at__gte=day_start(month), created_at__lt=day_start(next_month))
            )
            written += _insert(day_rows)
            _roll_up(day_rows, into=above)
        _insert(above)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # fresh planner statistics for a table rewritten at once
            cursor.execute("ANALYZE triage_investigationstat")
    return written


def ensure_built(**kwargs) -> None:
    """After `migrate`: fill the stats of a database that has investigations but no stats yet (the
    first migrate after upgrading, or a restored dump)."""
    if not InvestigationStat.objects.exists() and Investigation.objects.exists():
        rebuild()


# -- keeping rows current ------------------------------------------------------------------------

_pending = threading.local()


def _schedule(*keys: Key | None) -> None:
    """Refresh these keys once the current transaction commits (at once outside a transaction)."""
    keys = {k for k in keys if k}
    if not keys:
        return
    pending = getattr(_pending, "keys", None)
    if pending is None:
        pending = _pending.keys = set()
    pending |= keys
    transaction.on_commit(_flush, robust=True)


def _flush() -> None:
    """Runs after the commit, so a failure cannot undo the write: it is logged, and the rows are rebuilt
    from the source (bounded: only months with data) so the dashboard never disagrees with the database."""
    keys = getattr(_pending, "keys", None)
    if keys:
        _pending.keys = set()
        try:
            refresh_keys(keys)
        except Exception:
            logger.exception("Refreshing investigation stats for %d keys failed; rebuilding them all", len(keys))
            rebuild()


def _investigation_keys(ids: Iterable[int]) -> set[Key]:
    return {_key(*row) for row in Investigation.objects.filter(pk__in=list(ids)).values_list("created_at", "severity")}


def _remember_key(sender, instance, **kwargs):
    # as loaded (cheap: a list page loads 50): a save that moves the investigation refreshes both keys
    instance._stat_loaded = (instance.__dict__.get("created_at"), instance.__dict__.get("severity"))


def _loaded_key(instance) -> Key | None:
    return _key(*getattr(instance, "_stat_loaded", (None, None)))


def _investigation_saved(sender, instance, **kwargs):
    _schedule(_loaded_key(instance), key_of(instance))
    _remember_key(sender, instance)


def _investigation_deleted(sender, instance, **kwargs):
    _schedule(_loaded_key(instance), key_of(instance))


def _remember_investigation(sender, instance, **kwargs):
    instance._stat_investigation_id = instance.__dict__.get("investigation_id")


def _finding_changed(sender, instance, **kwargs):
    moved_from = getattr(instance, "_stat_investigation_id", None)
    if Finding.investigation.is_cached(instance) and moved_from in (None, instance.investigation_id):
        _schedule(key_of(instance.investigation))
    else:  # not loaded, or moved to another investigation: both keys
        _schedule(*_investigation_keys({instance.investigation_id, moved_from} - {None}))
    instance._stat_investigation_id = instance.investigation_id


def _components_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if not reverse and action in ("post_add", "post_remove", "post_clear"):
        _schedule(key_of(instance))
    elif reverse and action in ("post_add", "post_remove"):
        _schedule(*_investigation_keys(pk_set or ()))
    elif reverse and action == "pre_clear":  # component.investigations.clear(): the ids are gone afterwards
        _schedule(*_investigation_keys(instance.investigations.values_list("id", flat=True)))


def connect() -> None:
    post_init.connect(_remember_key, sender=Investigation, dispatch_uid="stat_remember")
    post_save.connect(_investigation_saved, sender=Investigation, dispatch_uid="stat_investigation_saved")
    post_delete.connect(_investigation_deleted, sender=Investigation, dispatch_uid="stat_investigation_deleted")
    post_init.connect(_remember_investigation, sender=Finding, dispatch_uid="stat_finding_remember")
    post_save.connect(_finding_changed, sender=Finding, dispatch_uid="stat_finding_saved")
    post_delete.connect(_finding_changed, sender=Finding, dispatch_uid="stat_finding_deleted")
    m2m_changed.connect(_components_changed, sender=Investigation.components.through, dispatch_uid="stat_components")


# -- reading -------------------------------------------------------------------------------------


def periods(start: date | None, end: date | None) -> Q:
    """The rows covering investigations created in [start, end] (either side open): month rows for the
    whole months inside, day rows for the days at either edge."""
    if start is None and end is None:
        return Q(kind=Kind.ALL)
    first_month = None if start is None else start if start.day == 1 else month_after(start)
    # the last month that ends on or before `end`
    last_month = None
    if end is not None:
        last_month = (
            end.replace(day=1)
            if end + timedelta(days=1) == month_after(end)
            else (end.replace(day=1) - timedelta(days=1)).replace(day=1)
        )
    if first_month is not None and last_month is not None and first_month > last_month:
        return Q(kind=Kind.DAY, period__gte=start, period__lte=end)  # no whole month inside
    query = Q(kind=Kind.MONTH)
    if first_month is not None:
        query &= Q(period__gte=first_month)
    if last_month is not None:
        query &= Q(period__lte=last_month)
    if start is not None and start < first_month:
        query |= Q(kind=Kind.DAY, period__gte=start, period__lt=first_month)
    if end is not None and month_after(last_month) <= end:
        query |= Q(kind=Kind.DAY, period__gte=month_after(last_month), period__lte=end)
    return query


def percentile(histogram: dict[str, list], fraction: float) -> float | None:
    """percentile_cont over the durations a histogram {bucket: [n, total seconds]} holds, each
    bucket's durations taken at their mean."""
    buckets = sorted((key, n, total / n) for key, (n, total) in histogram.items() if n)
    count = sum(n for _, n, _ in buckets)
    if not count:
        return None
    position = (count - 1) * fraction

    def value_at(rank: int) -> float:
        seen = 0
        for _, n, mean in buckets:
            seen += n
            if rank < seen:
                return mean
        return buckets[-1][2]

    low = int(position)
    below, above = value_at(low), value_at(min(low + 1, count - 1))
    return below + (above - below) * (position - low)
