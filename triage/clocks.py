"""SLA clock arithmetic, pure: a calendar's working time, and the clocks computed from a list of events.
No model is imported here (triage/sla.py reads the timeline and the policies and calls this), so the tests
can cross a daylight-saving change, a holiday, a pause and a reopen with exact minutes.

- Two goals per severity: **time to first response** (from creation to the first public reply to the
  reporter) and **time to resolution** (from creation, or a reopen, to resolved or closed).
- A clock counts working time of a calendar (hours, weekdays, a country's holidays and extra days off, in
  its time zone) or, with no calendar (ALWAYS), every minute.
- Both clocks **pause** while the investigation waits on the reporter.
- A **reopen** (resolved/closed -> an open status) starts a new resolution cycle with the full goal; the
  first response is counted once, in the first cycle (a resolution before any reply stops it).
- A goal is breached when its clock passes the goal; a warning is due at 75 % of it."""

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


def warning_key(state: SlaState) -> str:
    """The running clock whose warning is due first, as goal:cycle."""
    running = [c for c in state.clocks if c.running and c.warn_at]
    if not running:
        return ""
    first = min(running, key=lambda c: c.warn_at)
    return f"{first.goal}:{first.cycle}"
