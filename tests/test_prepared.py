"""Hot reads compiled once (hokusai_portal/prepared.py, issue 27): the same answers as the ORM query they
were compiled from, for whichever row is asked, without compiling again."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from hokusai_portal.prepared import PreparedValues
from onboarding import selectors, services
from onboarding.models import CheckRun, EnvironmentReport
from organizations.models import Membership, Organization


def test_the_wizard_reads_each_developers_own_progress(alice, dave, devstack_keys, settings, devstack):
    settings.HOKUSAI_REGISTRY_URL = devstack.url
    services.api_key_save(user=alice, raw_key=devstack_keys["writer"])
    CheckRun.objects.create(
        user=alice, status=CheckRun.Status.PASSED, registry_url=devstack.url, deadline_at=timezone.now()
    )
    EnvironmentReport.objects.create(user=dave, doctor_version="1", ok=True, facts={})
    alices, daves = selectors.wizard_of(user=alice), selectors.wizard_of(user=dave)
    assert (alices["current"], daves["current"]) == ("registration", "key")
    assert [s["done"] for s in alices["wizard_steps"]] == [True, True, False, False, False]
    assert [s["done"] for s in daves["wizard_steps"]] == [False, False, True, False, False]
    # The organization's key counts for its members.
    organization = Organization.objects.create(name="Acme")
    Membership.objects.create(organization=organization, user=dave, role=Membership.Role.OWNER)
    services.organization_key_save(user=dave, raw_key=devstack_keys["reader"])
    assert selectors.wizard_of(user=dave)["current"] == "connectivity"
    for user in (alice, dave):  # as the ORM query it was compiled from says
        expected = {k: bool(v) for k, v in selectors._progress_query(user.pk).get().items()}
        # The banner's answer is kept on the user object, not in the wizard's progress.
        assert selectors._progress(user=user) | {"email_verified": user._portal_email_verified} == expected


def test_a_prepared_query_is_compiled_once_and_run_for_each_value(alice, dave):
    built = []

    def build(user_id):
        built.append(user_id)
        return get_user_model().objects.filter(pk=user_id).values("username")

    usernames = PreparedValues(build)
    assert usernames.first(alice.pk) == {"username": "alice"}
    assert usernames.first(dave.pk) == {"username": "dave"}
    assert usernames.first(0) is None
    assert len(built) == 1


def test_a_query_that_does_not_use_its_value_is_refused(db):
    everyone = PreparedValues(lambda user_id: get_user_model().objects.values("username"))
    with pytest.raises(ValueError, match="does not use its value"):
        everyone.first(1)
