from django import forms

from hokusai_portal.form_fields import ModelIdChoiceField

from .environment import MAX_REPORT_BYTES
from .models import EnvironmentReport
from .registration_input import RegistrationInputError, model_name_error, registration_validate


class ApiKeyForm(forms.Form):
    api_key = forms.CharField(
        label="API key",
        strip=False,
        max_length=400,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "hk_live_…"}),
        help_text="From your Hokusai account settings. Starts with hk_live_, hk_test_ or hk_dev_. "
        "It is stored encrypted and never shown again in full.",
    )
    # Validation lives in services.api_key_save, after the rate limit, so every attempt counts.


class ConnectivityCheckForm(forms.Form):
    model_name = forms.CharField(
        label="Model name (optional)",
        required=False,
        max_length=256,
        help_text="The registered model you mean to register, e.g. LSCOR_Test_Model. "
        "With it, the write step checks you can write that model; without, it checks you can create one. "
        "Nothing is left behind in the registry either way.",
    )

    def clean_model_name(self) -> str:
        name = self.cleaned_data["model_name"].strip()
        if name and model_name_error(name):
            raise forms.ValidationError(model_name_error(name))
        return name


class RegistrationForm(forms.Form):
    model_uri = forms.CharField(
        label="Model URI",
        max_length=500,
        help_text="Pick a run above to fill it, or type it: models:/m-<id> (a logged model), runs:/<run_id>/model, "
        "models:/<name>/<version> or mlflow-artifacts:/<path>.",
        widget=forms.TextInput(attrs={"placeholder": "runs:/<run_id>/model"}),
    )
    model_name = forms.CharField(
        label="Model name",
        max_length=256,
        help_text="The registered model to add a version to; created if it does not exist. Example: LSCOR_Test_Model.",
        widget=forms.TextInput(attrs={"placeholder": "LSCOR_Test_Model"}),
    )
    token_id = forms.CharField(
        label="Token id",
        max_length=64,
        help_text="Your model's Hokusai token: letters, digits and inner hyphens, at most 64; stored upper-cased. Example: LSCOR.",
        widget=forms.TextInput(attrs={"placeholder": "LSCOR"}),
    )
    metric_name = forms.CharField(
        label="Metric name",
        max_length=250,
        help_text="The metric logged on the run that the baseline is measured on. Example: accuracy.",
        widget=forms.TextInput(attrs={"placeholder": "accuracy"}),
    )
    baseline_value = forms.CharField(
        label="Baseline value",
        max_length=50,
        help_text="The benchmark your model is measured against, a number. Example: 0.92.",
        widget=forms.TextInput(attrs={"placeholder": "0.92", "inputmode": "decimal"}),
    )
    proposal_identifier = forms.CharField(
        label="Proposal identifier (optional)", required=False, max_length=250, help_text="Defaults to the token id."
    )
    extra_tags = forms.CharField(
        label="Extra tags (optional)",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "team=growth\nsource=crm"}),
        help_text="One per line, key=value. Set on the model version beside Hokusai's tags.",
    )

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.registration_request = registration_validate(**{name: cleaned.get(name, "") for name in self.fields})
        except RegistrationInputError as error:
            for field_name, message in error.errors.items():
                self.add_error(field_name, forms.ValidationError(message, code=error.causes.get(field_name)))
        return cleaned


class EnvironmentReportForm(forms.Form):
    """A doctor report, pasted or uploaded (a file wins over pasted text)."""

    report = forms.CharField(
        label="Paste the report",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false", "autocomplete": "off"}),
        help_text="Everything `python hokusai_doctor.py --json` printed, starting with {.",
    )
    report_file = forms.FileField(
        label="…or upload it",
        required=False,
        help_text="The file `python hokusai_doctor.py --json > report.json` wrote.",
    )

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not (cleaned.get("report") or "").strip() and cleaned.get("report_file") is None:
            raise forms.ValidationError(
                "Paste the output of `python hokusai_doctor.py --json`, or upload it as a file.", code="empty"
            )
        return cleaned


class ProblemEnvironmentForm(forms.Form):
    """The environment part of "Report a problem": attach a saved report of one's own, or paste/upload one."""

    attach_environment = ModelIdChoiceField(
        queryset=EnvironmentReport.objects.none(),
        required=False,
        error_messages={"invalid_choice": "That environment report is not one of yours."},
    )
    environment_text = forms.CharField(required=False, max_length=MAX_REPORT_BYTES)
    environment_file = forms.FileField(required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attach_environment"].queryset = EnvironmentReport.objects.filter(user=user)
