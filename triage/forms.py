from django import forms
from django.contrib.auth import get_user_model

from accounts.roles import Role
from hokusai_portal import query as query_values
from hokusai_portal.form_fields import ModelIdChoiceField, ModelIdMultipleChoiceField
from hokusai_portal.query import key_values

from .markdown_io import MAX_BYTES
from .models import Component, Finding, Investigation


def support_users():
    return get_user_model().objects.filter(groups__name=Role.SUPPORT.value).order_by("username")


class InvestigationForm(forms.ModelForm):
    env_python = forms.CharField(label="Python version", required=False, max_length=40)
    env_sdk_version = forms.CharField(label="SDK version", required=False, max_length=120)
    env_sdk_commit = forms.CharField(label="SDK commit", required=False, max_length=40)
    env_mlflow_version = forms.CharField(label="MLflow version", required=False, max_length=40)
    env_extra = forms.CharField(
        label="Other environment (key=value per line)", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    components = ModelIdMultipleChoiceField(
        queryset=Component.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Investigation
        field_classes = {"owner": ModelIdChoiceField}
        fields = [
            "title",
            "summary",
            "severity",
            "owner",
            "next_review",
            "review_cadence",
            "components",
            "impact_user",
            "impact_business",
            "impact_platform",
            "reproduction_steps",
            "risks",
            "mitigations",
        ]
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 3}),
            "reproduction_steps": forms.Textarea(attrs={"rows": 6}),
            "risks": forms.Textarea(attrs={"rows": 3}),
            "mitigations": forms.Textarea(attrs={"rows": 3}),
            "impact_user": forms.Textarea(attrs={"rows": 2}),
            "impact_business": forms.Textarea(attrs={"rows": 2}),
            "impact_platform": forms.Textarea(attrs={"rows": 2}),
            "next_review": forms.DateInput(attrs={"type": "date"}),
        }
        help_texts = {"reproduction_steps": "Markdown; code blocks with ``` fences. API keys are masked on save."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = support_users()
        env = self.instance.environment or {}
        for name in ("python", "sdk_version", "sdk_commit", "mlflow_version"):
            self.fields[f"env_{name}"].initial = env.get(name, "")
        self.fields["env_extra"].initial = "\n".join(f"{k}={v}" for k, v in env.get("extra", {}).items())

    def clean_env_extra(self) -> dict:
        try:
            return key_values(self.cleaned_data["env_extra"])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def environment(self) -> dict:
        env = {
            name: self.cleaned_data[f"env_{name}"].strip()
            for name in ("python", "sdk_version", "sdk_commit", "mlflow_version")
        }
        env = {k: v for k, v in env.items() if v}
        if self.cleaned_data["env_extra"]:
            env["extra"] = self.cleaned_data["env_extra"]
        return env


class TransitionForm(forms.Form):
    status = forms.ChoiceField(choices=Investigation.Status.choices)
    resolution = forms.ChoiceField(choices=Investigation.Resolution.choices, required=False)
    duplicate_of = forms.CharField(required=False, max_length=20, help_text="For a duplicate: INV-n")

    def clean_duplicate_of(self):
        value = self.cleaned_data["duplicate_of"].strip().upper()
        if not value:
            return None
        number = query_values.object_id(value.removeprefix("INV-"))
        if number is None:
            raise forms.ValidationError("Write the number as INV-12.")
        try:
            return Investigation.objects.get(pk=number)
        except Investigation.DoesNotExist:
            raise forms.ValidationError(f"There is no {value}.") from None


class FindingStatusForm(forms.Form):
    """A finding's verdict, its reason and its root cause, edited together where the verdict is given."""

    status = forms.ChoiceField(choices=Finding.Status.choices, label="Verdict")
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)
    root_cause = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, label="Root cause"
    )


class CommentForm(forms.Form):
    """One box, two actions: the submit button pressed says who will read the comment."""

    VISIBILITY = [("reporter", "Reply to reporter"), ("internal", "Internal note")]
    body = forms.CharField(
        label="Comment",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=20000,
        help_text="A reply is shown to the developers who reported this; an internal note only to support and managers.",
    )
    visibility = forms.ChoiceField(choices=VISIBILITY, error_messages={"required": "Choose reply or internal note."})

    @property
    def internal(self) -> bool:
        return self.cleaned_data["visibility"] == "internal"


class ImportForm(forms.Form):
    file = forms.FileField(label="Markdown file", required=False, help_text=f"UTF-8, at most {MAX_BYTES // 1024} KiB.")
    text = forms.CharField(label="…or paste the plan", required=False, widget=forms.Textarea(attrs={"rows": 10}))
    again = forms.BooleanField(
        label="Import it again as a new investigation",
        required=False,
        help_text="Only if this plan was imported before and you want a second, separate copy.",
    )

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            if upload.size > MAX_BYTES:
                raise forms.ValidationError(
                    f"The file is {upload.size // 1024} KiB; plans over {MAX_BYTES // 1024} KiB are not imported."
                )
            cleaned["raw"] = upload.read()
        elif cleaned.get("text", "").strip():
            cleaned["raw"] = cleaned["text"]
        else:
            raise forms.ValidationError("Choose a Markdown file or paste the plan.")
        return cleaned
