from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .forms import SignupForm
from .roles import Role
from .services import user_create


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest):
    """Self sign-up for third-party developers (the only role anyone can give themselves)."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = user_create(
            username=form.cleaned_data["email"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            role=Role.DEVELOPER,
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Your developer account is ready. Start by adding your API key.")
        return redirect("onboarding:index")
    return render(request, "accounts/signup.html", {"form": form})
