"""Organizations (issue 24): a company onboards as a team. Invitations by email (once, 7 days, to the
invited address verified), one organization per developer, always an owner; members read the organization's
checks, registrations and reports (a report's note stays its author's), another organization gets 404;
the organization's key runs members' checks without their seeing it."""

import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from onboarding import services as onboarding_services
from onboarding.models import CheckRun, OrganizationApiKey
from organizations.models import Invitation, Membership, Organization
from tests.conftest import SEED_KEY, _make_user, key_appears_in_database, objects_owned_by, wait_for_run
from triage.models import Report

pytestmark = pytest.mark.django_db
LINK = re.compile(r"http://testserver(/organization/join/[^/\s]+/)")


@pytest.fixture(autouse=True)
def _mail_kept(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def create(client: Client, name: str = "Acme Analytics") -> Organization:
    response = client.post(reverse("organizations:index"), {"name": name})
    assert response.status_code == 302, response.content.decode()
    return Organization.objects.get(name=name)


def invite(client: Client, email: str) -> str:
    """Invite `email`; the path of the link the mail carries."""
    mail.outbox.clear()
    response = client.post(reverse("organizations:invite"), {"email": email}, follow=True)
    assert "Invitation sent" in response.content.decode()
    (message,) = mail.outbox
    assert message.to == [email]
    return LINK.search(message.body).group(1)


def join(client: Client, path: str) -> str:
    return client.post(path, follow=True).content.decode()


def test_it_invites_by_email_and_the_invitee_joins_once_with_that_verified_address(alice):
    erin = _make_user("erin", Role.DEVELOPER)  # an operator-made account: erin@example.com, verified
    owner = signed_in(alice)
    organization = create(owner)
    path = invite(owner, "Erin@Example.com")

    anonymous = Client().get(path).content.decode()
    assert "Sign up" in anonymous and "Sign in" in anonymous and "Erin@Example.com" in anonymous

    page = join(signed_in(erin), path)
    assert "You joined Acme Analytics" in page
    assert Membership.objects.get(user=erin).organization == organization
    assert Membership.objects.get(user=erin).role == Membership.Role.MEMBER

    again = signed_in(_make_user("erin2", Role.DEVELOPER)).get(path).content.decode()
    assert "already used" in again


def test_an_unverified_or_other_address_cannot_join(alice, dave):
    owner = signed_in(alice)
    create(owner)
    path = invite(owner, "newcomer@example.com")
    # dave's account has dave@example.com: not the invited address
    assert "This invitation is for newcomer@example.com" in join(signed_in(dave), path)
    # the invited address on dave's account, not yet verified: still no
    EmailAddress.objects.create(user=dave, email="newcomer@example.com", verified=False)
    assert "This invitation is for newcomer@example.com" in join(signed_in(dave), path)
    assert not Membership.objects.filter(user=dave).exists()
    EmailAddress.objects.filter(email="newcomer@example.com").update(verified=True)
    assert "You joined" in join(signed_in(dave), path)


def test_an_expired_resent_or_withdrawn_link_does_not_work(alice):
    erin = _make_user("erin", Role.DEVELOPER)
    owner = signed_in(alice)
    create(owner)
    first = invite(owner, "erin@example.com")
    invitation = Invitation.objects.get()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in join(signed_in(erin), first)

    mail.outbox.clear()
    owner.post(reverse("organizations:invitation_resend", args=[invitation.pk]))
    second = LINK.search(mail.outbox[0].body).group(1)
    assert second != first
    assert "not valid" in join(signed_in(erin), first)  # the old link stops working

    owner.post(reverse("organizations:invitation_revoke", args=[invitation.pk]))
    assert "withdrawn" in join(signed_in(erin), second)
    assert not Membership.objects.filter(user=erin).exists()


def test_a_developer_belongs_to_one_organization_at_a_time(alice, dave):
    create(signed_in(alice), "Acme")
    other = signed_in(dave)
    create(other, "Globex")
    path = invite(other, "alice@example.com")
    assert "You already belong to Acme" in signed_in(alice).get(path).content.decode()
    assert "already belong to Acme" in join(signed_in(alice), path)
    response = signed_in(alice).post(reverse("organizations:index"), {"name": "Third"})
    assert response.status_code == 302 and not Organization.objects.filter(name="Third").exists()
    assert Membership.objects.get(user=alice).organization.name == "Acme"


def test_an_organization_always_keeps_an_owner(alice):
    erin = _make_user("erin", Role.DEVELOPER)
    owner = signed_in(alice)
    organization = create(owner)
    join(signed_in(erin), invite(owner, "erin@example.com"))

    page = owner.get(reverse("organizations:leave")).content.decode()
    assert "hand over ownership" in page
    owner.post(reverse("organizations:leave"))
    assert Membership.objects.get(user=alice).is_owner

    erins = Membership.objects.get(user=erin)
    assert signed_in(erin).post(reverse("organizations:member_remove", args=[erins.pk])).status_code == 403
    owner.post(reverse("organizations:member_make_owner", args=[erins.pk]))
    assert Membership.objects.get(user=erin).is_owner and not Membership.objects.get(user=alice).is_owner
    owner.post(reverse("organizations:leave"))
    assert not Membership.objects.filter(user=alice).exists()
    assert Membership.objects.get(user=erin).is_owner

    signed_in(erin).post(reverse("organizations:leave"))  # the last member: the organization closes
    assert not Organization.objects.filter(pk=organization.pk).exists()


def test_the_owner_removes_a_member(alice):
    erin = _make_user("erin", Role.DEVELOPER)
    owner = signed_in(alice)
    create(owner)
    join(signed_in(erin), invite(owner, "erin@example.com"))
    owner.post(reverse("organizations:member_remove", args=[Membership.objects.get(user=erin).pk]))
    assert not Membership.objects.filter(user=erin).exists()


def test_an_invitation_is_saved_and_the_page_says_so_when_smtp_is_down(alice, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    owner = signed_in(alice)
    create(owner)
    response = owner.post(reverse("organizations:invite"), {"email": "erin@example.com"}, follow=True)
    assert response.status_code == 200
    assert "could not send the email" in response.content.decode()
    assert Invitation.objects.filter(email="erin@example.com").exists()


def test_members_read_the_organizations_check_registration_and_report_but_not_the_note(alice, dave):
    ids = objects_owned_by(alice)  # alice owns an organization, a failed check, a report from it, a registration
    Report.objects.filter(pk=ids["triage:rerun"]).update(note="alice's own words about her setup")
    erin = _make_user("erin", Role.DEVELOPER)
    Membership.objects.create(organization=Membership.objects.get(user=alice).organization, user=erin)
    create(signed_in(dave), "Globex")

    member, outsider = signed_in(erin), signed_in(dave)
    for url in (
        reverse("onboarding:check_run", args=[ids["run_id"]]),
        reverse("onboarding:registered_version", args=[ids["registration_id"]]),
        reverse("triage:detail", args=[ids["pk"]]),
    ):
        assert member.get(url).status_code == 200, url
        assert outsider.get(url).status_code == 404, url
    detail = member.get(reverse("triage:detail", args=[ids["pk"]])).content.decode()
    assert "alice's own words" not in detail
    assert "alice's own words" in signed_in(alice).get(reverse("triage:detail", args=[ids["pk"]])).content.decode()
    history = member.get(reverse("onboarding:history")).content.decode()
    assert f"/onboarding/checks/{ids['run_id']}/" in history and "alice" in history
    assert f"/onboarding/checks/{ids['run_id']}/" not in outsider.get(reverse("onboarding:history")).content.decode()
    reports = member.get(reverse("triage:my_reports")).content.decode()
    assert reverse("triage:detail", args=[ids["pk"]]) in reports


def test_the_owner_saves_the_organizations_key_and_members_run_with_it_without_seeing_it(alice):
    erin = _make_user("erin", Role.DEVELOPER)
    owner = signed_in(alice)
    create(owner)
    join(signed_in(erin), invite(owner, "erin@example.com"))

    response = owner.post(reverse("onboarding:organization_key"), {"api_key": SEED_KEY}, follow=True)
    saved = OrganizationApiKey.objects.get()
    assert saved.masked in response.content.decode() and SEED_KEY not in response.content.decode()
    assert key_appears_in_database(SEED_KEY) == []  # encrypted

    member = signed_in(erin)
    assert member.get(reverse("onboarding:organization_key")).status_code == 403
    key_page = member.get(reverse("onboarding:key")).content.decode()
    assert saved.masked in key_page and SEED_KEY not in key_page

    run = onboarding_services.connectivity_check_start(user=erin)
    assert (run.user, run.key_source, run.key_masked) == (erin, CheckRun.KeySource.ORGANIZATION, saved.masked)
    assert run.organization == Membership.objects.get(user=erin).organization

    # A personal key wins: the developer chose it for themselves.
    personal, _ = onboarding_services.api_key_save(user=erin, raw_key="hk_test_" + "B" * 32)
    run = onboarding_services.connectivity_check_start(user=erin)
    assert (run.key_source, run.key_masked) == (CheckRun.KeySource.PERSONAL, personal.masked)

    # Forgotten by the owner: a member with no key of their own has none.
    onboarding_services.api_key_forget(user=erin)
    owner.post(reverse("onboarding:organization_key_forget"))
    assert not OrganizationApiKey.objects.exists()
    with pytest.raises(onboarding_services.NoApiKey):
        onboarding_services.connectivity_check_start(user=erin)


@pytest.mark.django_db(transaction=True)
def test_a_member_runs_a_live_check_with_the_organizations_key(live_worker, alice, devstack, devstack_keys, settings):
    """The worker reads the organization's key for a run started with it: the check passes at the real
    registry, recorded as erin's, with the organization's masked key."""
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    erin = _make_user("erin", Role.DEVELOPER)
    owner = signed_in(alice)
    organization = create(owner)
    Membership.objects.create(organization=organization, user=erin)
    owner.post(reverse("onboarding:organization_key"), {"api_key": devstack_keys["writer"]})

    response = signed_in(erin).post(reverse("onboarding:connectivity"), {"model_name": ""})
    assert response.status_code == 302, response.content.decode()
    run = wait_for_run(int(response["Location"].rstrip("/").rsplit("/", 1)[-1]))
    assert run.status == CheckRun.Status.PASSED, [(s.name, s.cause) for s in run.steps.all()]
    assert (run.user, run.key_source) == (erin, CheckRun.KeySource.ORGANIZATION)
    page = signed_in(alice).get(reverse("onboarding:check_run", args=[run.pk])).content.decode()
    assert "(the organization's)" in page and devstack_keys["writer"] not in page


def test_support_sees_the_reporters_organization_and_filters_the_list_by_it(alice, bob):
    ids = objects_owned_by(alice)  # alice reported an investigation from a check run in her organization
    organization = Membership.objects.get(user=alice).organization
    support = signed_in(bob)
    detail = support.get(reverse("triage:detail", args=[ids["pk"]])).content.decode()
    assert organization.name in detail and "in 1 organization" in detail

    Organization.objects.create(name="Globex")
    mine = support.get(reverse("triage:index"), {"organization": organization.pk, "status": ""}).content.decode()
    assert f"INV-{ids['pk']}" in mine or reverse("triage:detail", args=[ids["pk"]]) in mine
    other = Organization.objects.get(name="Globex")
    theirs = support.get(reverse("triage:index"), {"organization": other.pk}).content.decode()
    assert reverse("triage:detail", args=[ids["pk"]]) not in theirs
    assert "organization: Globex" in theirs  # the filters-on line names it


def test_an_owner_hands_over_before_deleting_their_account_and_the_organization_keeps_an_owner(alice):
    erin = _make_user("erin", Role.DEVELOPER)
    owner = signed_in(alice)
    create(owner)
    Membership.objects.create(organization=Membership.objects.get(user=alice).organization, user=erin)
    assert owner.get(reverse("accounts:data_export")).json()["organization"]["role"] == "owner"
    refused = owner.post(reverse("accounts:delete"), {"confirm": "alice"})
    assert refused.status_code == 409 and "hand over ownership" in refused.content.decode()
    owner.post(reverse("organizations:member_make_owner", args=[Membership.objects.get(user=erin).pk]))
    assert owner.post(reverse("accounts:delete"), {"confirm": "alice"}).status_code == 302
    assert list(Membership.objects.values_list("user__username", "role")) == [("erin", "owner")]


def test_joining_invitations_and_the_organizations_key_are_in_the_audit_trail_without_secrets(alice):
    from auditlog.models import LogEntry

    erin = _make_user("erin", Role.DEVELOPER)
    owner = signed_in(alice)
    create(owner)
    path = invite(owner, "erin@example.com")
    join(signed_in(erin), path)
    owner.post(reverse("onboarding:organization_key"), {"api_key": SEED_KEY})

    invitation = Invitation.objects.get()
    trail = [entry.changes for entry in LogEntry.objects.get_for_object(invitation)]
    assert trail and all("token_hash" not in changes for changes in trail)
    assert any("accepted_at" in changes for changes in trail)
    assert LogEntry.objects.get_for_object(Membership.objects.get(user=erin)).exists()
    (key_entry,) = LogEntry.objects.get_for_object(OrganizationApiKey.objects.get())
    assert key_entry.changes["ciphertext"][1].startswith("••••")
    assert SEED_KEY not in str(list(LogEntry.objects.values_list("changes", flat=True)))
    assert path.rsplit("/", 2)[-2] not in str(list(LogEntry.objects.values_list("changes", flat=True)))


def test_the_csv_export_names_the_reporters_organizations_and_filters_by_one(alice, charlie):
    import csv
    import io

    ids = objects_owned_by(alice)
    organization = Membership.objects.get(user=alice).organization
    manager = signed_in(charlie)

    def rows(query: dict) -> list[dict]:
        response = manager.get(reverse("dashboard:csv"), query)
        return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    (row,) = [r for r in rows({}) if r["number"] == f"INV-{ids['pk']}"]
    assert row["organizations"] == organization.name
    other = Organization.objects.create(name="Globex")
    assert [r["number"] for r in rows({"organization": organization.pk})] == [f"INV-{ids['pk']}"]
    assert rows({"organization": other.pk}) == []
