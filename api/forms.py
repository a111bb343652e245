from django import forms

from .scopes import SCOPES, scopes_allowed
from .services import DEFAULT_DAYS, MAX_DAYS


class AccessTokenForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="What uses it, e.g. “CI of lscor-model”: you will see it in the list."
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        widget=forms.CheckboxSelectMultiple,
        help_text="Only what it needs. A token never does more than your account.",
        error_messages={"required": "Choose at least one scope."},
    )
    days = forms.IntegerField(
        label="Valid for (days)",
        min_value=1,
        max_value=MAX_DAYS,
        initial=DEFAULT_DAYS,
        help_text=f"{DEFAULT_DAYS} days unless you change it; at most {MAX_DAYS}.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the scopes this user's roles allow are offered (the service refuses the others all the same).
        self.fields["scopes"].choices = [(name, f"{name}: {SCOPES[name].label}") for name in scopes_allowed(user)]
