from django import forms

from .models import EventType


class EndpointForm(forms.Form):
    url = forms.URLField(
        label="Endpoint URL",
        max_length=500,
        assume_scheme="https",
        help_text="Where deliveries are POSTed, e.g. https://ops.example.com/hooks/hokusai.",
    )
    description = forms.CharField(required=False, max_length=200)
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple, help_text="What this endpoint receives."
    )
    legacy_headers = forms.BooleanField(
        required=False,
        label="Also send Hokusai's legacy headers",
        help_text="X-Hokusai-Signature and X-Hokusai-Idempotency-Key, for receivers built for model_registered.",
    )


class RedeliverRangeForm(forms.Form):
    start = forms.DateField(label="Failed from")
    end = forms.DateField(label="to (inclusive)")

    def clean(self):
        cleaned = super().clean()
        for name in ("start", "end"):
            if cleaned.get(name) and not 2000 <= cleaned[name].year <= 2100:
                self.add_error(name, "Choose a date between 2000 and 2100.")
        if not self.errors and cleaned.get("start") and cleaned.get("end") and cleaned["end"] < cleaned["start"]:
            raise forms.ValidationError("The range ends before it starts.")
        return cleaned
