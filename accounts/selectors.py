from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator


def user_email_verified(*, user) -> bool:
    """May the portal store a key for this user or send them mail? Not while their only addresses are
    unverified (a self sign-up that has not confirmed). Accounts with no address record (made by an operator
    without an email) have nothing to verify."""
    addresses = list(EmailAddress.objects.filter(user=user).values_list("verified", flat=True))
    return not addresses or any(addresses)


def user_has_second_factor(*, user) -> bool:
    return Authenticator.objects.filter(user=user).exclude(type=Authenticator.Type.RECOVERY_CODES).exists()
