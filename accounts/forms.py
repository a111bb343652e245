import logging

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm

from hokusai_portal.ratelimit import Limited, SlidingWindow, client_address

logger = logging.getLogger(__name__)
# Failed sign-ins: per account (a guesser on one password) and per client address (a guesser across
# accounts; higher, as an office shares one address). Successful sign-ins clear the account's count.
FAILED_LOGINS_PER_USER = SlidingWindow("login-user", limit=5, window=15 * 60)
FAILED_LOGINS_PER_ADDRESS = SlidingWindow("login-address", limit=30, window=15 * 60)


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing to try a password once the account or the address has failed too
    often: the right password is refused too until the window slides on, so guessing gains nothing."""

    throttled: Limited | None = None

    def clean(self):
        username = (self.cleaned_data.get("username") or "").strip().lower()
        address = client_address(self.request) if self.request else ""
        try:
            FAILED_LOGINS_PER_USER.check(username)
            FAILED_LOGINS_PER_ADDRESS.check(address)
        except Limited as limited:
            self.throttled = limited
            logger.warning("sign-in refused: too many failures for this account or address=%s", address)
            raise forms.ValidationError(
                f"Too many failed sign-ins for this account or from your network. Try again in {limited.wait}, "
                "or reset your password with support.",
                code="throttled",
            ) from None
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            FAILED_LOGINS_PER_USER.hit(username)
            FAILED_LOGINS_PER_ADDRESS.hit(address)
            raise
        FAILED_LOGINS_PER_USER.clear(username)
        return cleaned


class SignupForm(forms.Form):
    email = forms.EmailField(label="Email", help_text="You sign in with this address.")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(username__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Sign in instead.")
        return email

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("email") and cleaned.get("password"):
            candidate = get_user_model()(username=cleaned["email"], email=cleaned["email"])
            try:
                password_validation.validate_password(cleaned["password"], candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned
