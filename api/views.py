from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, services
from .forms import AccessTokenForm


@never_cache  # the page that shows a new token once must not be kept by any cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest):
    """The user's access tokens: make one (shown once, here), see when each was last used, revoke."""
    form = AccessTokenForm(request.POST if request.method == "POST" else None, user=request.user)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            token, plain = services.access_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                days=form.cleaned_data["days"],
            )
        except services.AccessTokenInvalid as error:
            for field_name, message in error.errors.items():
                form.add_error(field_name if field_name in form.fields else None, message)
        else:
            created = {"token": token, "plain": plain}
            form = AccessTokenForm(user=request.user)
    return render(
        request,
        "api/tokens.html",
        {"form": form, "created": created, "tokens": selectors.access_tokens_of(user=request.user)},
        status=201 if created else 200,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int):
    token = selectors.access_token_owned_by(user=request.user, token_id=token_id)
    if services.access_token_revoke(token=token):
        messages.success(request, f"Revoked “{token.name}”: it no longer admits anyone.")
    return redirect("api:tokens")
