"""SLA clocks, exact to the minute: working hours across a daylight-saving change, a holiday, a pause while
waiting on the reporter, a reopen; then the same clocks through the portal (timeline → fields → lists,
detail page, dashboard, the 75 % warning on the owner's queue)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import OutboxEmail
from triage import clocks as pure
from triage import services
from triage.models import Investigation, SlaCycle, SlaPolicy, TimelineEvent, WorkingCalendar

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = pure.Calendar(time_zone="Europe/Berlin", start=time(9), end=time(17), holiday_country="DE")


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def clocks(created, events=(), *, response=None, resolution=None, calendar=OFFICE, now):
    return pure.compute(
        created_at=created,
        events=list(events),
        response_minutes=response,
        resolution_minutes=resolution,
        calendar=calendar,
        now=now,
    )


def test_working_time_across_the_spring_daylight_saving_change():
    """Friday 27 March 2026, 16:00 CET (UTC+1) + 120 working minutes: 60 on Friday, then Monday 30 March
    from 09:00 CEST (UTC+2): due 10:00 CEST = 08:00 UTC (09:00 UTC if the zone's offset were ignored)."""
    state = clocks(berlin(2026, 3, 27, 16), resolution=120, now=berlin(2026, 3, 27, 16))
    assert state.current("resolution").due_at == utc(2026, 3, 30, 8)
    later = clocks(berlin(2026, 3, 27, 16), resolution=120, now=berlin(2026, 3, 30, 9, 30))
    assert later.current("resolution").elapsed_minutes == 90
    assert later.current("resolution").left_minutes == 30


def test_working_time_across_the_autumn_change_in_a_calendar_without_hours():
    """Around the clock, 25 October 2026 has 25 hours in Berlin: a 24 h goal from midnight ends at 23:00."""
    state = clocks(berlin(2026, 10, 25, 0), resolution=24 * 60, calendar=pure.ALWAYS, now=berlin(2026, 10, 25, 0))
    assert state.current("resolution").due_at == berlin(2026, 10, 25, 23)


def test_holidays_do_not_count():
    """Thursday 2 April 2026 16:00 + 120: Good Friday and Easter Monday are German holidays."""
    state = clocks(berlin(2026, 4, 2, 16), resolution=120, now=berlin(2026, 4, 2, 16))
    assert state.current("resolution").due_at == berlin(2026, 4, 7, 10)


def test_extra_days_off_do_not_count():
    calendar = pure.Calendar(time_zone="UTC", extra_holidays=frozenset({datetime(2026, 12, 24).date()}))
    state = clocks(utc(2026, 12, 23, 16), resolution=120, calendar=calendar, now=utc(2026, 12, 23, 16))
    assert state.current("resolution").due_at == utc(2026, 12, 25, 10)  # the 24th off, the 25th a Friday


def test_waiting_on_the_reporter_pauses_both_clocks():
    created = berlin(2026, 6, 1, 9)  # a Monday
    events = [
        pure.Event(berlin(2026, 6, 1, 10), "awaiting", awaiting=True),
        pure.Event(berlin(2026, 6, 1, 14), "awaiting", awaiting=False),
    ]
    paused = clocks(created, events[:1], response=240, resolution=180, now=berlin(2026, 6, 1, 12))
    assert paused.paused and paused.due_at is None
    assert paused.current("resolution").elapsed_minutes == 60
    resumed = clocks(created, events, response=240, resolution=180, now=berlin(2026, 6, 1, 14, 30))
    assert resumed.current("resolution").elapsed_minutes == 90
    assert resumed.current("resolution").due_at == berlin(2026, 6, 1, 16)
    assert resumed.current("response").due_at == berlin(2026, 6, 1, 17)


def test_a_reopen_starts_a_new_resolution_cycle_with_the_full_goal():
    created = berlin(2026, 6, 1, 9)
    events = [
        pure.Event(berlin(2026, 6, 1, 10, 40), "reply"),
        pure.Event(berlin(2026, 6, 1, 11, 40), "status", open=False),  # resolved after 160 minutes
        pure.Event(berlin(2026, 6, 2, 15), "status", open=True),  # reopened
    ]
    state = clocks(created, events, response=60, resolution=180, now=berlin(2026, 6, 3, 9, 30))
    first, second = [c for c in state.clocks if c.goal == "resolution"]
    assert (first.cycle, first.elapsed_minutes, first.met) == (1, 160, True)
    assert (second.cycle, second.started_at, second.elapsed_minutes) == (2, berlin(2026, 6, 2, 15), 150)
    assert second.due_at == berlin(2026, 6, 3, 9, 30) + timedelta(minutes=30)
    response = state.current("response")
    assert (response.elapsed_minutes, response.met) == (100, False)  # replied after 100 minutes: breached
    assert response.breached_at == berlin(2026, 6, 1, 10)


def test_a_breach_is_dated_to_the_minute_and_a_warning_is_due_at_75_percent():
    state = clocks(utc(2026, 6, 1, 9), resolution=200, now=utc(2026, 6, 1, 9))
    clock = state.current("resolution")
    assert clock.warn_at == utc(2026, 6, 1, 11, 30)
    assert clock.due_at == utc(2026, 6, 1, 12, 20)
    later = clocks(utc(2026, 6, 1, 9), resolution=200, now=utc(2026, 6, 1, 15))
    assert later.current("resolution").breached_at == utc(2026, 6, 1, 12, 20)
    assert later.breached and later.current("resolution").met is False


# --- through the portal -----------------------------------------------------------------------------------


@pytest.fixture
def office_policy(db):
    """High severity on Berlin office hours (DE holidays): respond in 60, resolve in 180 working minutes."""
    calendar = WorkingCalendar.objects.create(name="Berlin office", time_zone="Europe/Berlin", holiday_country="DE")
    SlaPolicy.objects.filter(severity="high").delete()
    return SlaPolicy.objects.create(
        severity="high", first_response_minutes=60, resolution_minutes=180, calendar=calendar
    )


def test_the_timeline_drives_the_clocks_and_the_lists(office_policy, bob, monkeypatch):
    monday = berlin(2026, 6, 1, 9)
    monkeypatch.setattr(timezone, "now", lambda: monday)
    investigation, _ = services.investigation_create(
        actor=bob, data={"title": "Keys rejected", "severity": "high", "created_at": monday}
    )
    investigation.refresh_from_db()
    assert investigation.sla_due_at == berlin(2026, 6, 1, 10)  # the first response, 60 minutes
    monkeypatch.setattr(timezone, "now", lambda: berlin(2026, 6, 1, 9, 40))
    services.comment_add(investigation=investigation, actor=bob, body="Looking at it.", internal=False)
    investigation.refresh_from_db()
    assert investigation.sla_due_at == berlin(2026, 6, 1, 12)  # responded; resolution 180 from 09:00
    services.investigation_set_awaiting(investigation=investigation, actor=bob, awaiting=True)
    investigation.refresh_from_db()
    assert investigation.sla_due_at is None
    monkeypatch.setattr(timezone, "now", lambda: berlin(2026, 6, 2, 9))
    services.investigation_set_awaiting(investigation=investigation, actor=bob, awaiting=False)
    investigation.refresh_from_db()
    assert investigation.sla_due_at == berlin(2026, 6, 2, 11, 20)  # 40 used before the pause, 140 left
    cycles = {(c.goal, c.cycle): c for c in SlaCycle.objects.filter(investigation=investigation)}
    assert cycles[("response", 1)].met is True and cycles[("response", 1)].elapsed_minutes == 40

    support = Client()
    support.force_login(bob)
    monkeypatch.setattr(timezone, "now", lambda: berlin(2026, 6, 2, 9, 5))
    breaching = support.get("/triage/?sla=breaching").content.decode()
    assert investigation.title in breaching
    assert investigation.title not in support.get("/triage/?sla=breached").content.decode()
    detail = support.get(f"/triage/{investigation.pk}/").content.decode()
    assert 'data-testid="sla-resolution"' in detail and "2 h 15 min left" in detail
    monkeypatch.setattr(timezone, "now", lambda: berlin(2026, 6, 2, 12))
    assert investigation.title in support.get("/triage/?sla=breached").content.decode()


def test_the_75_percent_warning_reaches_the_owners_queue_once(office_policy, bob, monkeypatch):
    monday = berlin(2026, 6, 1, 9)
    monkeypatch.setattr(timezone, "now", lambda: monday)
    investigation, _ = services.investigation_create(
        actor=bob, data={"title": "Registry slow", "severity": "high", "created_at": monday, "owner": bob}
    )
    services.comment_add(investigation=investigation, actor=bob, body="On it.", internal=False)
    assert services.sla_warnings_send(berlin(2026, 6, 1, 11)) == 0  # 120 of 180: under 75 %
    assert services.sla_warnings_send(berlin(2026, 6, 1, 11, 16)) == 1  # 136 of 180
    assert services.sla_warnings_send(berlin(2026, 6, 1, 11, 30)) == 0  # once per clock
    warning = TimelineEvent.objects.get(investigation=investigation, kind="sla_warning")
    assert warning.internal and "breaches at 2026-06-01 10:00 UTC" in warning.body
    (email,) = OutboxEmail.objects.filter(to=bob.email)  # through the notifications' outbox
    assert email.subject.startswith(f"[{investigation.number}] SLA: resolution 75 % used")
    monkeypatch.setattr(timezone, "now", lambda: berlin(2026, 6, 1, 11, 31))
    support = Client()
    support.force_login(bob)
    queue = support.get("/triage/queue/").content.decode()
    assert 'data-testid="sla-warnings"' in queue and "Registry slow" in queue.split('data-testid="sla-warnings"')[1]


def test_internal_notes_do_not_count_as_a_first_response(office_policy, bob, monkeypatch):
    monday = berlin(2026, 6, 1, 9)
    monkeypatch.setattr(timezone, "now", lambda: monday)
    investigation, _ = services.investigation_create(
        actor=bob, data={"title": "Internal only", "severity": "high", "created_at": monday}
    )
    services.comment_add(investigation=investigation, actor=bob, body="Note to self.", internal=True)
    investigation.refresh_from_db()
    assert investigation.sla_due_at == berlin(2026, 6, 1, 10)


def test_the_dashboard_shows_attainment_per_severity_and_week(office_policy, bob, charlie, monkeypatch):
    monday = berlin(2026, 6, 1, 9)
    monkeypatch.setattr(timezone, "now", lambda: monday)
    met, _ = services.investigation_create(actor=bob, data={"title": "Met", "severity": "high", "created_at": monday})
    late, _ = services.investigation_create(actor=bob, data={"title": "Late", "severity": "high", "created_at": monday})
    monkeypatch.setattr(timezone, "now", lambda: berlin(2026, 6, 1, 9, 30))
    for investigation in (met, late):
        services.comment_add(investigation=investigation, actor=bob, body="Seen.", internal=False)
    services.investigation_transition(investigation=met, actor=bob, status="resolved", resolution="cannot_reproduce")
    monkeypatch.setattr(timezone, "now", lambda: berlin(2026, 6, 3, 9))
    services.investigation_transition(investigation=late, actor=bob, status="resolved", resolution="cannot_reproduce")
    manager = Client()
    manager.force_login(charlie)
    page = manager.get("/dashboard/").content.decode()
    row = page.split('data-testid="sla-attainment-high"')[1].split("</tr>")[0]
    assert "1 of 2" in row and "50 %" in row  # resolution: one met, one breached (first responses: 2 of 2)
    assert "/triage/?severity=high&amp;sla=breached" in page


def test_a_bad_calendar_is_refused_in_the_admin(db):
    from django.core.exceptions import ValidationError

    calendar = WorkingCalendar(name="Mars", time_zone="Mars/Olympus", work_start="09:00", work_end="17:00")
    with pytest.raises(ValidationError):
        calendar.full_clean()
    assert Investigation.objects.count() == 0


def test_an_action_of_many_steps_recomputes_the_clocks_once(office_policy, bob, monkeypatch):
    """Resolving as fixed from New walks four statuses; the clocks were recomputed after each (the timeline
    read, the cycles deleted and written again, four times in the support engineer's request)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monday = berlin(2026, 6, 1, 9)
    monkeypatch.setattr(timezone, "now", lambda: monday)
    investigation, _ = services.investigation_create(
        actor=bob, data={"title": "Keys rejected", "severity": "high", "created_at": monday}
    )
    investigation.findings.create(title="Keys of the old plan", root_cause="The gateway's plan table")
    monkeypatch.setattr(timezone, "now", lambda: berlin(2026, 6, 1, 10, 30))
    with CaptureQueriesContext(connection) as queries:
        services.investigation_transition(investigation=investigation, actor=bob, status="resolved", resolution="fixed")
    recomputations = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "triage_slacycle"')]
    assert len(recomputations) == 1
    assert TimelineEvent.objects.filter(investigation=investigation, kind="status").count() == 4
    investigation.refresh_from_db()
    assert investigation.status == "resolved" and investigation.sla_due_at is None
    assert investigation.sla_breached  # the first response (the resolving) came 30 minutes past its goal
    cycles = {(c.goal, c.cycle): c for c in SlaCycle.objects.filter(investigation=investigation)}
    assert cycles[("response", 1)].met is False and cycles[("response", 1)].elapsed_minutes == 90  # late: 60 min goal
    assert cycles[("resolution", 1)].met is True and cycles[("resolution", 1)].elapsed_minutes == 90
