"""Guessing is slowed: failed sign-ins per account+address, per account and per known browser (allauth), and key submissions, are counted in
a sliding window (a fixed window let 20 key submissions through in 4.6 s across its boundary)."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

from hokusai_portal.ratelimit import Limited, SlidingWindow
from onboarding import services
from onboarding.models import ApiKey
from tests.conftest import PASSWORD

KEY = "hk_test_Abcdefghijklmnopqrstuvwxyz012345"
PER_ACCOUNT_AND_ADDRESS = int(settings.ACCOUNT_RATE_LIMITS["login_failed"].split("/")[0])
PER_ACCOUNT = int(settings.ACCOUNT_RATE_LIMITS["login_failed_account"].split("/")[0])
WRONG = "The username and/or password you specified are not correct."


def sign_in(client, username, password, address="203.0.113.7"):
    return client.post(reverse("accounts:login"), {"login": username, "password": password}, REMOTE_ADDR=address)


def test_wrong_passwords_lock_the_account_from_that_address_even_against_the_right_one(client, alice, dave):
    """Seen: 30 wrong passwords in a row each got 200, then the right one signed in."""
    for attempt in range(PER_ACCOUNT_AND_ADDRESS):
        response = sign_in(client, "alice", f"wrong-{attempt}")
        assert response.status_code == 200 and WRONG in response.content.decode()
    refused = sign_in(client, "alice", PASSWORD)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many failed login attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # Case does not dodge it; another account from the same address is not affected (no lock per address).
    assert sign_in(client, "ALICE", PASSWORD).status_code == 429
    assert sign_in(client, "dave", PASSWORD).status_code == 302


def test_guessing_one_account_from_many_addresses_is_stopped_per_account(client, alice):
    for attempt in range(PER_ACCOUNT):
        sign_in(client, "alice", "guess", address=f"198.51.100.{attempt}")
    assert sign_in(client, "alice", PASSWORD, address="192.0.2.200").status_code == 429


def test_a_browser_that_signed_in_before_keeps_signing_in_while_the_account_is_attacked(client, alice):
    """OWASP's device cookies: the attacker spends the account's allowance; alice's own browser has its own."""
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.post(reverse("accounts:logout"))
    attacker = type(client)()
    for attempt in range(PER_ACCOUNT):
        sign_in(attacker, "alice", "guess", address=f"198.51.100.{attempt}")
    assert sign_in(attacker, "alice", PASSWORD, address="192.0.2.200").status_code == 429
    assert sign_in(client, "alice", PASSWORD, address="192.0.2.201").status_code == 302  # the known browser
    forged = type(client)()
    forged.cookies["portal_device"] = "forged"
    assert sign_in(forged, "alice", PASSWORD, address="192.0.2.202").status_code == 429


def test_an_office_behind_one_address_is_throttled_not_locked(client, db):
    """Many people failing from one address do not lock the right password of anyone else out."""
    for attempt in range(PER_ACCOUNT_AND_ADDRESS * 3):
        assert sign_in(client, f"user{attempt}@example.com", "guess").status_code == 200


def test_a_success_gives_back_what_it_counted(client, alice):
    for attempt in range(PER_ACCOUNT_AND_ADDRESS - 1):
        sign_in(client, "alice", f"wrong-{attempt}")
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_key_submissions_across_a_window_boundary_count_together(alice):
    """10 just before a boundary and 10 just after: the second ten are refused."""
    window = services.KEY_SUBMISSIONS
    boundary = 1_000_000 * window.window  # a multiple of the window: a fixed window's edge
    for second in range(window.limit):
        window.check("alice", now=boundary - 5 + second * 0.1)
        window.hit("alice", now=boundary - 5 + second * 0.1)
    with pytest.raises(Limited) as refused:
        window.check("alice", now=boundary + 1)
    # The previous window's ten fade as the window slides: one more is allowed once a tenth has gone.
    assert 0.05 * window.window < refused.value.retry_after < 0.15 * window.window
    window.check("alice", now=boundary + 1 + refused.value.retry_after)


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_the_window_allows_exactly_the_limit_and_names_a_wait_that_works(db, limit):
    window = SlidingWindow(f"probe-{limit}", limit=limit, window=60)
    now = 6_000_000.0
    for n in range(limit):
        window.check("k", now=now + n)
        window.hit("k", now=now + n)
    with pytest.raises(Limited) as refused:
        window.check("k", now=now + limit)
    window.check("k", now=now + limit + refused.value.retry_after)  # the wait it named is enough
    with pytest.raises(Limited):
        window.check("k", now=now + limit + refused.value.retry_after - 2)  # and not much more than needed


def test_the_key_page_says_when_to_come_back(client, alice):
    client.force_login(alice)
    for _ in range(services.KEY_SUBMISSIONS_PER_WINDOW):
        client.post(reverse("onboarding:key"), {"api_key": "nonsense"})
    response = client.post(reverse("onboarding:key"), {"api_key": KEY})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many key submissions (10 in 10 minutes). Try again in" in response.content.decode()
    assert not ApiKey.objects.filter(user=alice).exists()


def test_behind_a_proxy_each_client_is_counted_apart(client, alice, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    proxy = "10.0.0.5"
    for attempt in range(PER_ACCOUNT_AND_ADDRESS):
        client.post(
            reverse("accounts:login"),
            {"login": "alice", "password": "x"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=f"6.6.6.{attempt}, 203.0.113.66",
        )
    blocked = client.post(
        reverse("accounts:login"),
        {"login": "alice", "password": PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="203.0.113.66",
    )
    assert blocked.status_code == 429  # the client's forged left-hand entries did not spread its count
    other = client.post(
        reverse("accounts:login"),
        {"login": "alice", "password": PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="198.51.100.20",
    )
    assert other.status_code == 302  # another client behind the same proxy signs in


def reset_password(client, email: str, password: str, address: str) -> None:
    """The reset as its owner does it, from `client` at `address`: the request, the emailed link, the form."""
    mail.outbox.clear()
    client.post(reverse("account_reset_password"), {"email": email}, REMOTE_ADDR=address)
    (message,) = mail.outbox
    link = "/" + re.search(r"https?://[^/\s]+/(accounts/password/reset/key/\S+/)", message.body).group(1)
    form = client.get(link, follow=True, REMOTE_ADDR=address)
    done = client.post(form.redirect_chain[-1][0], {"password1": password, "password2": password}, REMOTE_ADDR=address)
    assert done.status_code == 302
    client.post(reverse("accounts:logout"), REMOTE_ADDR=address)


NEW_PASSWORD = "a-brand-new-unusual-passphrase"


def test_a_password_reset_lifts_the_lock_its_owner_met(client, alice, settings):
    """Seen: locked out by wrong passwords, a developer reset hers by email and the new one was still refused
    (429) for up to 15 minutes. A guesser elsewhere keeps the lock of his own address."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    here, guesser = "203.0.113.7", "198.51.100.250"
    for attempt in range(PER_ACCOUNT_AND_ADDRESS):  # by either name: one account, one count
        sign_in(client, ("alice", "alice@example.com")[attempt % 2], f"wrong-{attempt}", address=here)
    for _ in range(PER_ACCOUNT_AND_ADDRESS):
        sign_in(type(client)(), "alice@example.com", "guess", address=guesser)
    for attempt in range(PER_ACCOUNT - 2 * PER_ACCOUNT_AND_ADDRESS):  # the account's own allowance spent too
        sign_in(type(client)(), "alice", "guess", address=f"198.51.100.{attempt}")
    assert sign_in(client, "alice@example.com", PASSWORD, address=here).status_code == 429
    assert sign_in(type(client)(), "alice", PASSWORD, address="192.0.2.9").status_code == 429

    reset_password(client, "alice@example.com", NEW_PASSWORD, here)

    assert sign_in(client, "alice@example.com", NEW_PASSWORD, address=here).status_code == 302  # from here
    assert sign_in(type(client)(), "alice", NEW_PASSWORD, address="192.0.2.9").status_code == 302  # anywhere
    assert sign_in(type(client)(), "alice@example.com", NEW_PASSWORD, address=guesser).status_code == 429


def test_a_password_reset_lifts_the_lock_of_the_browser_it_is_made_from(client, alice, settings):
    """A browser that signed in before has its own allowance (the device cookie): spent, the reset made from
    that browser gives it back."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.post(reverse("accounts:logout"))
    for attempt in range(PER_ACCOUNT_AND_ADDRESS):
        sign_in(client, "alice", f"wrong-{attempt}", address=f"192.0.2.{attempt}")
    assert sign_in(client, "alice", PASSWORD, address="192.0.2.100").status_code == 429
    reset_password(client, "alice@example.com", NEW_PASSWORD, "192.0.2.101")
    assert sign_in(client, "alice", NEW_PASSWORD, address="192.0.2.102").status_code == 302


def test_an_address_added_unverified_to_another_account_lifts_nobodys_lock(client, alice, dave, settings):
    """Anyone may add any address to their own account, unverified (allauth does not say it is taken). A
    reset of that account must not clear the lock of the account the address really belongs to."""
    from allauth.account.models import EmailAddress

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    EmailAddress.objects.create(user=dave, email="alice@example.com", verified=False, primary=False)
    for attempt in range(PER_ACCOUNT):
        sign_in(type(client)(), "alice@example.com", "guess", address=f"198.51.100.{attempt}")
    assert sign_in(type(client)(), "alice@example.com", PASSWORD, address="192.0.2.9").status_code == 429
    reset_password(client, "dave@example.com", NEW_PASSWORD, "198.51.100.1")
    assert sign_in(type(client)(), "alice@example.com", PASSWORD, address="192.0.2.9").status_code == 429
