from allauth.account import views as allauth_views
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from . import services
from .roles import Role, roles_of
from .selectors import user_email_verified, user_has_second_factor

# Too many failed sign-ins for this account: the form says so; the answer is a 429 with a Retry-After.
THROTTLED_RETRY_AFTER = 15 * 60


class LoginView(allauth_views.LoginView):
    """allauth's sign-in (password, passkey, SSO button), answering 429 when the failures' limit is spent."""

    def form_invalid(self, form):
        response = super().form_invalid(form)
        codes = {error.code for error in form.errors.as_data().get("__all__", [])}
        if "too_many_login_attempts" in codes:
            response.status_code = 429
            response["Retry-After"] = str(THROTTLED_RETRY_AFTER)
        return response


@login_required
def account_settings(request: HttpRequest):
    """The account's page: email, password, second factors, sessions, data."""
    return render(
        request,
        "accounts/settings.html",
        {
            "email_verified": user_email_verified(user=request.user),
            "has_second_factor": user_has_second_factor(user=request.user),
        },
    )


@login_required
@require_GET
def data_export(request: HttpRequest):
    """ "Download my data": the account's data as a JSON file (never a key)."""
    response = JsonResponse(services.account_export(user=request.user), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = 'attachment; filename="hokusai-portal-my-data.json"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest):
    """Delete the account after typing its username; refused, with the reason, while the account owns open
    investigations."""
    blockers = services.account_deletion_blocked(user=request.user)
    error = ""
    if request.method == "POST" and not blockers:
        if request.POST.get("confirm", "").strip() != request.user.get_username():
            error = "Type your username exactly to confirm."
        else:
            try:
                services.account_delete(user=request.user)
            except services.AccountDeletionRefused as refused:
                blockers = [str(refused)]
            else:
                logout(request)
                messages.success(request, "Your account was deleted. Your saved API key was destroyed.")
                return redirect("accounts:login")
    status = 409 if request.method == "POST" and blockers else 400 if error else 200
    return render(request, "accounts/delete.html", {"blockers": blockers, "error": error}, status=status)


@login_required
def home(request: HttpRequest):
    """Send each user to the page of their main role."""
    roles = roles_of(request.user)
    if Role.SUPPORT in roles:
        return redirect("triage:index")
    if Role.MANAGER in roles:
        return redirect("dashboard:index")
    return redirect("onboarding:index")
