from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import Role, role_required
from hokusai_portal import query as query_values
from triage import selectors as triage_selectors

from . import services
from .models import OutboxEmail, Preference


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest):
    mode = services.mode_of(request.user)
    if request.method == "POST":
        wanted = query_values.choice(request.POST.get("mode"), Preference.Mode.values)
        if not wanted:
            messages.error(request, "Choose at once, a daily digest or off.")
        else:
            services.mode_set(user=request.user, mode=wanted)
            messages.success(request, f"Saved: {Preference.Mode(wanted).label.split(':')[0].lower()}.")
            return redirect("notifications:settings")
    return render(
        request,
        "notifications/settings.html",
        {
            "mode": mode,
            "modes": Preference.Mode.choices,
            "follows": services.followed_by(request.user),
            "organization_follows": services.followed_with_organization(request.user),
        },
    )


@login_required
@require_POST
def follow(request: HttpRequest, pk: int):
    """Follow (follow=1) or unfollow an investigation the user may read (others get a 404); or, for a member of
    an organization, make (everyone=1) or withdraw (everyone=0) the organization's choice to follow it."""
    investigation = triage_selectors.investigation_get_for(user=request.user, pk=pk)
    if "everyone" in request.POST:
        on = request.POST.get("everyone") == "1"
        try:
            organization = services.organization_follow_set(user=request.user, investigation=investigation, on=on)
        except services.OrganizationFollowRefused as refused:
            messages.error(request, str(refused))
        else:
            messages.success(
                request,
                f"Everyone in {organization.name} follows {investigation.number}: each member gets its public changes "
                "by email, members who join later too."
                if on
                else f"{organization.name} no longer follows {investigation.number} as a whole (members who follow it "
                "themselves still do).",
            )
    elif request.POST.get("follow") == "1":
        services.follow(user=request.user, investigation=investigation)
        messages.success(request, f"You follow {investigation.number}: its public changes will be emailed to you.")
    elif services.unfollow(user=request.user, investigation_id=investigation.pk):
        messages.success(request, f"You no longer follow {investigation.number}.")
    if request.POST.get("next") == "settings":
        return redirect("notifications:settings")
    return redirect("triage:detail", pk=pk)


@csrf_exempt  # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" with no session; the token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str):
    """GET asks (link scanners fetch links: a GET changes nothing); POST does it, with no sign-in."""
    try:
        user_id, investigation_id = services.unsubscribe_read(token)
    except signing.BadSignature:
        return render(
            request,
            "notifications/unsubscribe.html",
            {"error": "This unsubscribe link is damaged. Use the link from the email again, or change your settings."},
            status=400,
        )
    if request.method == "POST":
        return render(request, "notifications/unsubscribe.html", {"done": services.unsubscribe_apply(token)})
    return render(request, "notifications/unsubscribe.html", {"investigation_id": investigation_id})


@role_required(Role.SUPPORT)
def outbox(request: HttpRequest):
    page = Paginator(OutboxEmail.objects.all(), 50).get_page(request.GET.get("page"))
    return render(request, "notifications/outbox.html", {"page": page, "counts": services.outbox_counts(), "query": ""})
