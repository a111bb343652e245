from django import forms


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
        if name and any(ch in name for ch in "/\\:%\n\r\t"):
            raise forms.ValidationError("A model name cannot contain / \\ : % or line breaks.")
        return name
