from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef


def user_email_verified(*, user) -> bool:
    """May the portal store a key for this user or send them mail? Not while their only addresses are
    unverified (a self sign-up that has not confirmed). Accounts with no address record (made by an operator
    without an email) have nothing to verify. Read once per request object: a query that reads the user's row
    anyway may answer it on the way (email_verified_of_user_row, then email_verified_known)."""
    known = getattr(user, "_portal_email_verified", None)
    if known is not None:
        return known
    verified = get_user_model().objects.filter(pk=user.pk).values_list(email_verified_of_user_row(), flat=True).first()
    return verified is None or bool(verified)  # no row: no address either


def email_verified_of_user_row():
    """The rule of user_email_verified, as an expression over a user row (OuterRef("pk")): the one place it is
    written, for its own query and for a query that reads the user's row anyway."""
    addresses = EmailAddress.objects.filter(user=OuterRef("pk"))
    return ~Exists(addresses) | Exists(addresses.filter(verified=True))


def email_verified_known(*, user, verified) -> None:
    """What such a query said, kept on this request's user object (every page's banner asks it again)."""
    user._portal_email_verified = bool(verified)  # SQLite answers EXISTS with 0 or 1


def user_has_second_factor(*, user) -> bool:
    return Authenticator.objects.filter(user=user).exclude(type=Authenticator.Type.RECOVERY_CODES).exists()
