from django import forms


class OrganizationForm(forms.Form):
    name = forms.CharField(label="Organization name", max_length=100, help_text="Your company's name.")


class InvitationForm(forms.Form):
    email = forms.EmailField(
        label="Invite by email",
        max_length=254,
        help_text="They get a link that works once, for 7 days; they join by signing in with this address, verified.",
    )
