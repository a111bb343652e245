"""SLA clocks, computed from the append-only timeline (Jira Service Management's model, reduced):

- Two goals per severity (SlaPolicy): **time to first response** (from creation to the first public reply
  to the reporter) and **time to resolution** (from creation, or a reopen, to resolved or closed).
- A clock counts working time of the policy's calendar (hours, weekdays, a country's holidays and extra
  days off, in its time zone) or, with no calendar, every minute.
- Both clocks **pause** while the investigation waits on the reporter (the "awaiting reporter" flag).
- A **reopen** (resolved/closed → an open status) starts a new resolution cycle with the full goal; the
  first response is counted once, in the first cycle (a resolution before any reply stops it).
- A goal is breached when its clock passes the goal; a warning is due at 75 % of it.

`compute` is pure (timeline in, clocks out) so the tests can cross a daylight-saving change, a holiday, a
pause and a reopen with exact minutes; `refresh` saves what the lists and the dashboard filter on."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

WARN_FRACTION = 0.75
MAX_DAYS = 3660  # a goal further than ten years of working days away is a misconfigured calendar

RESPONSE, RESOLUTION = "response", "resolution"


@dataclass(frozen=True)
class Calendar:
    """Working hours: [start, end) local time on `weekdays` (0 = Monday), minus holidays."""

    time_zone: str = "UTC"
    start: time = time(9)
    end: time = time(17)
    weekdays: frozenset = frozenset(range(5))
    holiday_country: str = ""
    holiday_subdivision: str = ""
    extra_holidays: frozenset = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_working_day(self, day: date) -> bool:
        if day.weekday() not in self.weekdays or day in self.extra_holidays:
            return False
        return not (self.holiday_country and day in _holidays(self.holiday_country, self.holiday_subdivision, day.year))

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's working window as aware datetimes (a DST day keeps its wall-clock hours)."""
        if not self.is_working_day(day):
            return None
        return datetime.combine(day, self.start, self.zone), datetime.combine(day, self.end, self.zone)


ALWAYS = None  # no calendar: every minute counts


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str, year: int):
    import holidays

    return holidays.country_holidays(country, subdiv=subdivision or None, years=year)


def working_seconds(start: datetime, end: datetime, calendar: Calendar | None) -> float:
    """Seconds of working time in [start, end). All arithmetic in UTC: Python subtracts two datetimes of one
    zone by their wall clocks, which is an hour off across a daylight-saving change."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0.0
    if calendar is ALWAYS:
        return (end - start).total_seconds()
    total = 0.0
    day = start.astimezone(calendar.zone).date()
    last = end.astimezone(calendar.zone).date()
    while day <= last:
        window = calendar.window(day)
        if window:
            lo, hi = max(start, window[0].astimezone(UTC)), min(end, window[1].astimezone(UTC))
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total


def add_working_seconds(start: datetime, seconds: float, calendar: Calendar | None) -> datetime:
    """The moment `seconds` of working time after `start` (in UTC)."""
    start = start.astimezone(UTC)
    if calendar is ALWAYS:
        return start + timedelta(seconds=seconds)
    remaining = seconds
    day = start.astimezone(calendar.zone).date()
    for _ in range(MAX_DAYS):
        window = calendar.window(day)
        if window and window[1] > start:
            lo, hi = max(start, window[0].astimezone(UTC)), window[1].astimezone(UTC)
            available = (hi - lo).total_seconds()
            if remaining <= available:
                return lo + timedelta(seconds=remaining)
            remaining -= available
        day += timedelta(days=1)
    raise ValueError("the calendar has no working time in the next ten years")


@dataclass(frozen=True)
class Event:
    """What the clocks read from the timeline: a status change, the awaiting flag, a public reply."""

    at: datetime
    kind: str  # "status" | "awaiting" | "reply"
    open: bool = True  # for "status": whether the new status is open
    awaiting: bool = False  # for "awaiting": the new value


@dataclass
class Clock:
    goal: str
    cycle: int
    started_at: datetime
    goal_minutes: int
    elapsed_seconds: float = 0.0
    ended_at: datetime | None = None
    paused: bool = False
    due_at: datetime | None = None  # while running: when it breaches
    warn_at: datetime | None = None  # while running and under 75 %: when the warning is due
    breached_at: datetime | None = None

    @property
    def elapsed_minutes(self) -> int:
        return int(self.elapsed_seconds // 60)

    @property
    def running(self) -> bool:
        return self.ended_at is None and not self.paused

    @property
    def met(self) -> bool | None:
        """Within the goal: known once the clock ended or once it is breached."""
        if self.breached_at is not None:
            return False
        return True if self.ended_at is not None else None

    @property
    def left_minutes(self) -> int:
        return int((self.goal_minutes * 60 - self.elapsed_seconds) // 60)


@dataclass
class SlaState:
    clocks: list[Clock] = field(default_factory=list)

    def current(self, goal: str) -> Clock | None:
        found = [c for c in self.clocks if c.goal == goal]
        return found[-1] if found else None

    @property
    def due_at(self) -> datetime | None:
        dues = [c.due_at for c in self.clocks if c.running and c.due_at]
        return min(dues) if dues else None

    @property
    def warn_at(self) -> datetime | None:
        warns = [c.warn_at for c in self.clocks if c.running and c.warn_at]
        return min(warns) if warns else None

    @property
    def breached(self) -> bool:
        """A goal of the current cycle (or the first response) is breached."""
        return any(c.breached_at for c in self.clocks if c.goal == RESPONSE or c is self.current(RESOLUTION))

    @property
    def paused(self) -> bool:
        return any(c.paused and c.ended_at is None for c in self.clocks)


def compute(
    *,
    created_at: datetime,
    events: list[Event],
    response_minutes: int | None,
    resolution_minutes: int | None,
    calendar: Calendar | None,
    now: datetime,
) -> SlaState:
    """The clocks as of `now`, from the creation time and the timeline's events (any order)."""
    state = SlaState()
    is_open, awaiting = True, False
    running_since: datetime | None = created_at
    response = Clock(RESPONSE, 1, created_at, response_minutes) if response_minutes else None
    resolution = Clock(RESOLUTION, 1, created_at, resolution_minutes) if resolution_minutes else None
    for clock in (response, resolution):
        if clock:
            state.clocks.append(clock)

    def active() -> list[Clock]:
        return [c for c in (response, resolution) if c and c.ended_at is None]

    def advance(until: datetime) -> None:
        """Count working time from running_since to `until` into every active clock."""
        if running_since is None or until <= running_since:
            return
        seconds = working_seconds(running_since, until, calendar)
        for clock in active():
            before = clock.elapsed_seconds
            clock.elapsed_seconds += seconds
            goal = clock.goal_minutes * 60
            if before < goal <= clock.elapsed_seconds and clock.breached_at is None:
                clock.breached_at = add_working_seconds(running_since, goal - before, calendar)

    for event in sorted((e for e in events if e.at <= now), key=lambda e: e.at):
        advance(event.at)
        if event.kind == "reply" and response and response.ended_at is None and is_open:
            response.ended_at = event.at
        elif event.kind == "awaiting":
            awaiting = event.awaiting
        elif event.kind == "status":
            if is_open and not event.open:  # resolved or closed: every clock stops
                for clock in active():
                    clock.ended_at = event.at
            elif not is_open and event.open and resolution_minutes:  # reopened: a new resolution cycle
                resolution = Clock(RESOLUTION, resolution.cycle + 1 if resolution else 1, event.at, resolution_minutes)
                state.clocks.append(resolution)
            is_open = event.open
        running_since = event.at if (is_open and not awaiting) else None
    advance(now)
    for clock in active():
        clock.paused = awaiting
        if clock.paused:
            continue
        goal = clock.goal_minutes * 60
        left = goal - clock.elapsed_seconds
        clock.due_at = clock.breached_at or add_working_seconds(now, max(left, 0), calendar)
        warn = goal * WARN_FRACTION - clock.elapsed_seconds
        clock.warn_at = add_working_seconds(now, warn, calendar) if warn > 0 else now
    return state


# --- the portal's side: policies from the database, clocks from the timeline, fields kept current ---------


def calendar_of(model) -> Calendar | None:
    """A WorkingCalendar row as a Calendar (raises ValueError/KeyError on a bad zone, country or day)."""
    if model is None:
        return ALWAYS
    days = frozenset(int(d) for d in str(model.weekdays).split(",") if d.strip())
    if not days <= set(range(7)):
        raise ValueError("Weekdays are 0 (Monday) to 6 (Sunday).")
    extra = frozenset(date.fromisoformat(str(d)) for d in (model.extra_holidays or []))
    calendar = Calendar(
        time_zone=model.time_zone,
        start=_as_time(model.work_start),
        end=_as_time(model.work_end),
        weekdays=days,
        holiday_country=model.holiday_country.upper(),
        holiday_subdivision=model.holiday_subdivision.upper(),
        extra_holidays=extra,
    )
    calendar.zone  # noqa: B018 - an unknown zone raises here, not in a list view
    if calendar.holiday_country:
        _holidays(calendar.holiday_country, calendar.holiday_subdivision, 2026)
    return calendar


def _as_time(value) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def events_of(investigation, timeline) -> list[Event]:
    """The clock events in a timeline (TimelineEvent rows), plus the current status when the timeline does not
    reach it (an imported plan sets its status without a change event)."""
    from .models import Investigation, TimelineEvent

    by_label = {label: value for value, label in Investigation.Status.choices}
    open_values = {str(s) for s in Investigation.OPEN_STATUSES}
    events, is_open = [], True
    for item in timeline:
        if item.kind == TimelineEvent.Kind.COMMENT and not item.internal:
            events.append(Event(item.created_at, "reply"))
        elif item.subject == "status":
            value = by_label.get(item.new_value, item.new_value)
            is_open = value in open_values
            events.append(Event(item.created_at, "status", open=is_open))
        elif item.subject == "awaiting reporter":
            events.append(Event(item.created_at, "awaiting", awaiting=item.new_value == "yes"))
    if is_open != investigation.is_open:
        at = (investigation.resolved_at if not investigation.is_open else None) or investigation.updated_at
        events.append(Event(max(at, investigation.created_at), "status", open=investigation.is_open))
    return events


CLOCK_SUBJECTS = ("status", "awaiting reporter")


def state_of(investigation, now: datetime | None = None, policy=None) -> SlaState | None:
    """The investigation's clocks now, or None when its severity has no policy."""
    from django.utils import timezone

    from .models import SlaPolicy, TimelineEvent

    if policy is None:
        policy = SlaPolicy.objects.select_related("calendar").filter(severity=investigation.severity).first()
    if policy is None:
        return None
    timeline = (
        TimelineEvent.objects.filter(investigation=investigation)
        .filter(clock_events_q())
        .order_by("created_at", "id")
        .only("kind", "subject", "new_value", "internal", "created_at")
    )
    return compute(
        created_at=investigation.created_at,
        events=events_of(investigation, timeline),
        response_minutes=policy.first_response_minutes,
        resolution_minutes=policy.resolution_minutes,
        calendar=calendar_of(policy.calendar),
        now=now or timezone.now(),
    )


def clock_events_q():
    from django.db.models import Q

    return Q(subject__in=CLOCK_SUBJECTS) | Q(kind="comment", internal=False)


def is_clock_event(*, subject: str, kind: str, internal: bool) -> bool:
    return subject in CLOCK_SUBJECTS or (kind == "comment" and not internal)


def refresh(investigation, now: datetime | None = None, policy=None) -> SlaState | None:
    """Recompute the clocks and save what the lists filter on and what the dashboard counts."""
    from django.db import transaction

    from .models import Investigation, SlaCycle

    state = state_of(investigation, now, policy)
    with transaction.atomic():
        SlaCycle.objects.filter(investigation=investigation).delete()
        if state is None:
            Investigation.objects.filter(pk=investigation.pk).update(
                sla_due_at=None, sla_warn_at=None, sla_breached=False
            )
            return None
        SlaCycle.objects.bulk_create(
            SlaCycle(
                investigation=investigation,
                goal=clock.goal,
                cycle=clock.cycle,
                severity=investigation.severity,
                started_at=clock.started_at,
                ended_at=clock.ended_at,
                goal_minutes=clock.goal_minutes,
                elapsed_minutes=clock.elapsed_minutes,
                breached_at=clock.breached_at,
                met=clock.met,
            )
            for clock in state.clocks
        )
        Investigation.objects.filter(pk=investigation.pk).update(
            sla_due_at=state.due_at, sla_warn_at=state.warn_at, sla_breached=state.breached
        )
    investigation.sla_due_at, investigation.sla_warn_at, investigation.sla_breached = (
        state.due_at,
        state.warn_at,
        state.breached,
    )
    return state


def refresh_open(*, severity: str) -> int:
    """Recompute the open investigations of a severity (its policy changed); returns how many."""
    from .models import Investigation

    investigations = list(Investigation.objects.filter(severity=severity, status__in=Investigation.OPEN_STATUSES))
    for investigation in investigations:
        refresh(investigation)
    return len(investigations)


def warning_key(state: SlaState) -> str:
    """The running clock whose warning is due first, as goal:cycle."""
    running = [c for c in state.clocks if c.running and c.warn_at]
    if not running:
        return ""
    first = min(running, key=lambda c: c.warn_at)
    return f"{first.goal}:{first.cycle}"


def warnings_send(now: datetime | None = None) -> int:
    """Investigations past 75 % of a goal get one internal timeline note for their owner (shown on the owner's
    queue). Returns how many were warned. Beat sends it every minute."""
    from django.utils import timezone

    from .models import Investigation, TimelineEvent
    from .signals import timeline_event_added

    now = now or timezone.now()
    warned = 0
    due = Investigation.objects.filter(sla_warn_at__lte=now, status__in=Investigation.OPEN_STATUSES)
    for investigation in due.select_related("owner")[:500]:
        state = refresh(investigation, now)
        key = warning_key(state) if state else ""
        if not key or key == investigation.sla_warned_for:
            continue
        clock = next(c for c in state.clocks if f"{c.goal}:{c.cycle}" == key)
        if clock.warn_at and clock.warn_at > now:
            continue
        owner = investigation.owner.get_username() if investigation.owner else "no owner"
        event = TimelineEvent.objects.create(
            investigation=investigation,
            kind=TimelineEvent.Kind.CHANGE,
            subject="SLA warning",
            new_value=f"{clock.goal} {'breached' if clock.breached_at else '75 % used'}",
            body=(
                f"The {clock.goal.replace('response', 'first response')} goal ({clock.goal_minutes} min) is "
                f"{'breached' if clock.breached_at else 'at 75 %'}; it breaches at {clock.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC. "
                f"Owner: {owner}."
            ),
            internal=True,
        )
        Investigation.objects.filter(pk=investigation.pk).update(sla_warned_for=key)
        timeline_event_added.send(sender=TimelineEvent, event=event)  # notifications email the owner
        warned += 1
    return warned
