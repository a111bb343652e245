"""Followers hear of public changes by email, through the outbox, from a real SMTP server the tests start
(aiosmtpd): one email per public change, none for internal ones, digests, off, one-click unsubscribe
(RFC 8058), and an SMTP server that is down delays mail without losing or doubling any."""

import email
import email.policy
import os
import subprocess
import sys
from datetime import timedelta
from email.message import Message
from urllib.parse import urlparse

import pytest
from aiosmtpd.controller import Controller
from django.test import Client
from django.utils import timezone

from accounts.roles import Role
from devstack.server import free_port
from notifications import services
from notifications.models import Follow, OrganizationFollow, OutboxEmail, Preference
from organizations.models import Membership, Organization
from tests.conftest import ROOT, _make_user, objects_owned_by
from triage import services as triage_services
from triage.models import Investigation, Report

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self):
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]).strip() for m in self.messages]

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp_port(settings):
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    settings.PORTAL_BASE_URL = "http://portal.test"
    return port


@pytest.fixture
def inbox(smtp_port):
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def reported(alice):
    """Alice reported her failed check: she follows the investigation it opened."""
    run_id = objects_owned_by(alice)["run_id"]
    client = Client()
    client.force_login(alice)
    client.post(f"/triage/reports/from-check/{run_id}/", {"note": "stuck"})
    investigation = Investigation.objects.get(reports__reporter=alice, fingerprint__startswith="connectivity:")
    assert Follow.objects.get(user=alice, investigation=investigation).reason == Follow.Reason.REPORTED
    return investigation


def test_one_email_per_public_change_and_none_for_internal_ones(inbox, reported, alice, bob):
    triage_services.comment_add(investigation=reported, actor=bob, body="Can you try the test key?", internal=False)
    triage_services.comment_add(
        investigation=reported, actor=bob, body="INTERNAL: her org is on the old plan", internal=True
    )
    triage_services.investigation_update(investigation=reported, actor=bob, summary="internal rewording")
    triage_services.investigation_transition(investigation=reported, actor=bob, status="investigating")
    services.outbox_send()
    mail = inbox.to(alice.email)
    assert len(mail) == 2, [m["Subject"] for m in mail]
    reply, status = mail
    assert str(reply["Subject"]).strip() == f"[{reported.number}] Reply from support: {reported.title}"
    assert "Can you try the test key?" in reply.get_payload(decode=True).decode()
    assert str(status["Subject"]).strip() == f"[{reported.number}] Status: New → Investigating: {reported.title}"
    assert not any("INTERNAL" in m.get_payload(decode=True).decode() for m in inbox.messages)
    assert reply["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert reply["List-Unsubscribe"].strip().startswith("<http://portal.test/notifications/unsubscribe/")
    assert OutboxEmail.objects.filter(status="sent").count() == 2


def test_the_one_who_made_the_change_is_not_told(inbox, reported, bob):
    services.follow(user=bob, investigation=reported)
    triage_services.comment_add(investigation=reported, actor=bob, body="On it.", internal=False)
    services.outbox_send()
    assert inbox.to(bob.email) == []


def test_a_daily_digest_gathers_the_changes_and_off_sends_nothing(inbox, reported, alice, bob, dave):
    services.mode_set(user=alice, mode=Preference.Mode.DAILY)
    services.follow(user=dave, investigation=reported)
    services.mode_set(user=dave, mode=Preference.Mode.OFF)
    triage_services.comment_add(investigation=reported, actor=bob, body="First answer.", internal=False)
    triage_services.investigation_transition(investigation=reported, actor=bob, status="investigating")
    services.outbox_send()
    assert inbox.messages == []
    assert services.digests_send() == 1
    assert services.digests_send() == 0  # each change once
    services.outbox_send()
    (digest,) = inbox.messages
    assert (
        digest["To"] == alice.email and str(digest["Subject"]).strip() == "Hokusai portal: 2 updates on what you follow"
    )
    body = digest.get_payload(decode=True).decode()
    assert "First answer." in body and "Status: New → Investigating" in body


def test_an_smtp_server_that_is_down_delays_mail_and_loses_none(smtp_port, reported, alice, bob):
    triage_services.comment_add(investigation=reported, actor=bob, body="Reply while mail is down.", internal=False)
    assert services.outbox_send() == (0, 1)
    pending = OutboxEmail.objects.get()
    assert (pending.status, pending.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in pending.last_error and pending.next_attempt_at > timezone.now()
    client = Client()
    client.force_login(bob)
    assert 'data-testid="outbox-pending">1 pending<' in client.get("/notifications/outbox/").content.decode()
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        assert services.outbox_send() == (0, 0)  # not due yet: backing off
        later = timezone.now() + timedelta(minutes=2)
        assert services.outbox_send(later) == (1, 0)
        assert services.outbox_send(later) == (0, 0)
    finally:
        controller.stop()
    assert box.subjects() == [pending.subject]
    assert OutboxEmail.objects.get().status == "sent"


def test_one_click_unsubscribe_with_no_session(inbox, reported, alice, bob):
    triage_services.comment_add(investigation=reported, actor=bob, body="Hello.", internal=False)
    services.outbox_send()
    (message,) = inbox.messages
    path = urlparse(message["List-Unsubscribe"].strip().strip("<>")).path
    anonymous = Client(enforce_csrf_checks=True)
    assert "Stop emails about" in anonymous.get(path).content.decode()  # a link scanner's GET changes nothing
    assert Follow.objects.filter(user=alice, investigation=reported).exists()
    done = anonymous.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200 and "no longer follow" in done.content.decode()
    assert not Follow.objects.filter(user=alice, investigation=reported).exists()
    triage_services.comment_add(investigation=reported, actor=bob, body="Anyone?", internal=False)
    services.outbox_send()
    assert len(inbox.messages) == 1
    forged = anonymous.post(
        path[:-6] + "AAAAA/", "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert forged.status_code == 400 and "damaged" in forged.content.decode()


def test_support_follows_and_anyone_unfollows_from_the_page(reported, alice, bob):
    support = Client()
    support.force_login(bob)
    support.post(f"/notifications/follow/{reported.pk}/", {"follow": "1"})
    assert Follow.objects.filter(user=bob, investigation=reported).exists()
    assert "Unfollow" in support.get(f"/triage/{reported.pk}/").content.decode()
    developer = Client()
    developer.force_login(alice)
    developer.post(f"/notifications/follow/{reported.pk}/", {"follow": "0", "next": "settings"})
    assert not Follow.objects.filter(user=alice, investigation=reported).exists()
    developer.post("/notifications/settings/", {"mode": "daily"})
    assert services.mode_of(alice) == "daily"
    assert developer.post("/notifications/settings/", {"mode": "hourly"}).status_code == 200  # refused, unchanged
    assert services.mode_of(alice) == "daily"


def test_make_run_keeps_mail_on_this_machine(tmp_path):
    """The embedded defaults write each email to a file under the var folder; production sends by SMTP."""
    code = "from hokusai_portal import runtime; runtime.prepare(); import django; django.setup(); from django.conf import settings as s; print(s.EMAIL_BACKEND, s.EMAIL_FILE_PATH)"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("EMAIL_") and k not in ("PORTAL_ENV", "DATABASE_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE="hokusai_portal.settings", PORTAL_VAR_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    backend, path = out.stdout.split()
    assert backend == "django.core.mail.backends.filebased.EmailBackend" and path == str(tmp_path / "mail")


def test_an_unverified_address_gets_no_mail_until_it_is_verified(inbox, reported, alice, bob):
    """Sign-up takes any address: the portal mails it only once its owner proved it is theirs (allauth)."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=alice).update(verified=False)
    triage_services.comment_add(investigation=reported, actor=bob, body="Any news?", internal=False)
    services.outbox_send()
    assert inbox.to(alice.email) == []
    EmailAddress.objects.filter(user=alice).update(verified=True)
    triage_services.comment_add(investigation=reported, actor=bob, body="Fixed now.", internal=False)
    services.outbox_send()
    assert len(inbox.to(alice.email)) == 1


# --- "everyone in my organization" follows (issue 24) ------------------------------------------------------


def test_everyone_in_the_organization_follows_with_one_choice(inbox, reported, alice, bob, dave):
    """Alice (owner of the organization she reported from) chooses "everyone in my organization" on the page.
    A public change then mails each member once: erin (who also follows herself), gina (who joined after the
    choice); not hal (who left), not dave (no organization), and nothing for an internal note. A member who
    unfollows stops only their own emails."""
    organization = Membership.objects.get(user=alice).organization
    erin, hal = _make_user("erin", Role.DEVELOPER), _make_user("hal", Role.DEVELOPER)
    for member in (erin, hal):
        Membership.objects.create(organization=organization, user=member)
    page = Client()
    page.force_login(alice)
    detail = page.get(f"/triage/{reported.pk}/").content.decode()
    assert f"Everyone in {organization.name} follows</button>" in detail
    page.post(f"/notifications/follow/{reported.pk}/", {"everyone": "1"})
    assert f"Stop everyone in {organization.name} following" in page.get(f"/triage/{reported.pk}/").content.decode()
    services.follow(user=erin, investigation=reported)  # erin follows herself too: still one email
    gina = _make_user("gina", Role.DEVELOPER)
    Membership.objects.create(organization=organization, user=gina)  # joins after the choice
    Membership.objects.filter(user=hal).delete()  # leaves

    triage_services.comment_add(investigation=reported, actor=bob, body="Fixed on our side, try again.", internal=False)
    triage_services.comment_add(investigation=reported, actor=bob, body="INTERNAL: plan limits", internal=True)
    services.outbox_send()
    teammate = organization.memberships.get(user__username__startswith="teammate-").user  # made with the org
    assert sorted(m["To"] for m in inbox.messages) == sorted([alice.email, teammate.email, erin.email, gina.email])
    assert inbox.to(hal.email) == [] and inbox.to(dave.email) == []
    assert not any("INTERNAL" in m.get_payload(decode=True).decode() for m in inbox.messages)
    (to_gina,) = inbox.to(gina.email)
    body = to_gina.get_payload(decode=True).decode()
    assert "Fixed on our side, try again." in body
    assert f"Everyone in {organization.name} follows it. Stop following {reported.number}:" in body
    assert "You follow it." in inbox.to(erin.email)[0].get_payload(decode=True).decode()  # her own follow's words

    # Gina's one-click unsubscribe stops her emails only; the organization still follows.
    path = urlparse(to_gina["List-Unsubscribe"].strip().strip("<>")).path
    Client().post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    inbox.messages.clear()
    triage_services.investigation_transition(investigation=reported, actor=bob, status="investigating")
    services.outbox_send()
    assert sorted(m["To"] for m in inbox.messages) == sorted([alice.email, teammate.email, erin.email])
    member = Client()
    member.force_login(gina)
    assert "you stopped" in member.get(f"/triage/{reported.pk}/").content.decode()

    # Any member may withdraw the choice: then only those who follow themselves hear.
    member.post(f"/notifications/follow/{reported.pk}/", {"everyone": "0"})
    inbox.messages.clear()
    triage_services.comment_add(investigation=reported, actor=bob, body="Any better?", internal=False)
    services.outbox_send()
    assert sorted(m["To"] for m in inbox.messages) == sorted([alice.email, erin.email])

    # Dave joins the investigation ("this is me too", no check): in no organization, he is told why he cannot
    # choose for one; in an organization that reported nothing of it, he is told its members could not read it.
    Report.objects.create(investigation=reported, reporter=dave)
    refused = Client()
    refused.force_login(dave)
    answer = refused.post(f"/notifications/follow/{reported.pk}/", {"everyone": "1"}, follow=True)
    assert answer.status_code == 200 and "You are not in an organization." in answer.content.decode()
    Membership.objects.create(organization=Organization.objects.create(name="Solo"), user=dave, role="owner")
    assert "follow-organization-form" not in refused.get(f"/triage/{reported.pk}/").content.decode()
    answer = refused.post(f"/notifications/follow/{reported.pk}/", {"everyone": "1"}, follow=True)
    assert "Solo cannot follow" in answer.content.decode()
    assert not OrganizationFollow.objects.filter(organization__name="Solo").exists()


def test_support_sees_the_organizations_members_among_the_followers(reported, alice, bob):
    organization = Membership.objects.get(user=alice).organization
    services.organization_follow_set(user=alice, investigation=reported, on=True)
    support = Client()
    support.force_login(bob)
    page = support.get(f"/triage/{reported.pk}/").content.decode()
    members = organization.memberships.count()  # alice and her teammate; alice counted once
    assert f"{members} followers." in page
    assert "follow-organization-form" not in page  # staff have no organization to choose for


def test_a_public_change_costs_the_same_queries_for_three_followers_or_sixty(reported, alice, bob):
    """A known issue many developers joined has hundreds of followers: each once cost ~5 queries (its mode,
    its verified address, a notification per step, an email) inside the support engineer's request."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def followers(names, mode=None):
        users = [_make_user(name, Role.DEVELOPER) for name in names]
        for user in users:
            services.follow(user=user, investigation=reported)
            if mode:
                services.mode_set(user=user, mode=mode)
        return users

    def queries_of_a_reply(body):
        with CaptureQueriesContext(connection) as queries:
            triage_services.comment_add(investigation=reported, actor=bob, body=body, internal=False)
        return len(queries)

    few_followers = followers(["f1", "f2"])
    few = queries_of_a_reply("First answer.")
    assert OutboxEmail.objects.count() == 3  # alice, f1, f2

    immediate = followers([f"i{n}" for n in range(30)])
    daily = followers([f"d{n}" for n in range(15)], Preference.Mode.DAILY)
    off = followers([f"o{n}" for n in range(6)], Preference.Mode.OFF)
    unverified = followers([f"u{n}" for n in range(6)])
    EmailAddress.objects.filter(user__in=unverified).update(verified=False)
    made_by_an_operator = followers(["op1", "op2"])  # no address record: nothing to verify, mailed
    EmailAddress.objects.filter(user__in=made_by_an_operator).delete()
    no_email = followers(["ne1"])
    get_user_model().objects.filter(pk=no_email[0].pk).update(email="")
    OutboxEmail.objects.all().delete()

    assert queries_of_a_reply("Second answer.") == few
    mailed = set(OutboxEmail.objects.values_list("to", flat=True))
    assert mailed == {u.email for u in [alice, *few_followers, *immediate, *made_by_an_operator]}
    assert OutboxEmail.objects.count() == len(mailed)  # each once
    assert services.digests_send() == len(daily)
    assert not mailed & {u.email for u in off + unverified + no_email}
