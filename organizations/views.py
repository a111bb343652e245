"""Organization pages (developers). Owner-only actions: no organization -> 404, a member -> 403, an
object of another organization -> 404. Every action's GET asks to confirm; the POST does it."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.roles import Role, role_required

from . import selectors, services
from .forms import InvitationForm, OrganizationForm
from .models import Invitation, Membership

developer_only = role_required(Role.DEVELOPER)


def _link_for(request: HttpRequest):
    return lambda token: request.build_absolute_uri(reverse("organizations:join", kwargs={"invitation_token": token}))


def _mail_outcome(request: HttpRequest, sent: bool, email: str) -> None:
    if sent:
        messages.success(request, f"Invitation sent to {email}. The link works once, for 7 days.")
    else:
        messages.warning(
            request,
            f"The invitation to {email} is saved but we could not send the email just now (our mail server did "
            "not answer). Use “Send again” in a few minutes.",
        )


@developer_only
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest):
    membership = selectors.membership_of(user=request.user)
    create_form = OrganizationForm(request.POST if request.method == "POST" and membership is None else None)
    if request.method == "POST" and membership is None and create_form.is_valid():
        try:
            organization = services.organization_create(user=request.user, name=create_form.cleaned_data["name"])
        except services.OrganizationError as error:
            create_form.add_error(None, str(error))
        else:
            messages.success(request, f"{organization.name} is created; you are its owner. Invite your team below.")
            return redirect("organizations:index")
    elif request.method == "POST":
        return redirect("organizations:index")
    context = {"membership": membership, "create_form": create_form, "invite_form": InvitationForm()}
    if membership is not None:
        context["members"] = selectors.organization_members(organization=membership.organization)
        context["invitations"] = selectors.invitations_open(organization=membership.organization)
    return render(request, "organizations/index.html", context)


@developer_only
@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest):
    membership = selectors.membership_of(user=request.user)
    if membership is None:
        raise Http404("No organization")
    if not membership.is_owner:
        raise PermissionDenied
    if request.method == "GET":
        return redirect("organizations:index")
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation, sent = services.invitation_create(
                actor=request.user,
                organization=membership.organization,
                email=form.cleaned_data["email"],
                link_for=_link_for(request),
            )
        except services.OrganizationError as error:
            messages.error(request, str(error))
        else:
            _mail_outcome(request, sent, invitation.email)
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("organizations:index")


def _owners_object(request: HttpRequest, queryset, pk: int):
    membership = selectors.membership_of(user=request.user)
    if membership is None:
        raise Http404("No organization")
    if not membership.is_owner:
        raise PermissionDenied
    return get_object_or_404(queryset.filter(organization=membership.organization), pk=pk)


def _confirm(request: HttpRequest, title: str, text: str, button: str, blocker: str = ""):
    return render(
        request, "organizations/confirm.html", {"title": title, "text": text, "button": button, "blocker": blocker}
    )


def _act(request: HttpRequest, action, done: str):
    try:
        action()
    except services.OrganizationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect("organizations:index")


@developer_only
@require_http_methods(["GET", "POST"])
def invitation_resend(request: HttpRequest, pk: int):
    invitation = _owners_object(request, Invitation.objects.filter(accepted_at=None, revoked_at=None), pk)
    if request.method == "GET":
        return _confirm(
            request,
            "Send the invitation again",
            f"{invitation.email} gets a new link, valid for 7 days; the old link stops working.",
            "Send again",
        )
    try:
        sent = services.invitation_resend(actor=request.user, invitation=invitation, link_for=_link_for(request))
    except services.OrganizationError as error:
        messages.error(request, str(error))
    else:
        _mail_outcome(request, sent, invitation.email)
    return redirect("organizations:index")


@developer_only
@require_http_methods(["GET", "POST"])
def invitation_revoke(request: HttpRequest, pk: int):
    invitation = _owners_object(request, Invitation.objects.filter(accepted_at=None, revoked_at=None), pk)
    if request.method == "GET":
        return _confirm(
            request, "Withdraw the invitation", f"The link sent to {invitation.email} stops working.", "Withdraw"
        )
    return _act(
        request,
        lambda: services.invitation_revoke(actor=request.user, invitation=invitation),
        f"The invitation to {invitation.email} is withdrawn.",
    )


@developer_only
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, pk: int):
    membership = _owners_object(request, Membership.objects.select_related("user"), pk)
    name = membership.user.get_username()
    if request.method == "GET":
        return _confirm(
            request,
            f"Remove {name}",
            f"{name} no longer sees the organization's checks, registrations and reports, nor uses its key. "
            "What they ran stays theirs.",
            "Remove",
        )
    return _act(
        request, lambda: services.member_remove(actor=request.user, membership=membership), f"{name} was removed."
    )


@developer_only
@require_http_methods(["GET", "POST"])
def member_make_owner(request: HttpRequest, pk: int):
    membership = _owners_object(request, Membership.objects.select_related("user"), pk)
    name = membership.user.get_username()
    if request.method == "GET":
        return _confirm(
            request,
            f"Hand over ownership to {name}",
            f"{name} becomes the owner (invitations, members, the organization's key); you stay as a member.",
            "Hand over",
        )
    return _act(
        request,
        lambda: services.ownership_hand_over(actor=request.user, membership=membership),
        f"{name} is the owner now.",
    )


@developer_only
@require_http_methods(["GET", "POST"])
def leave(request: HttpRequest):
    membership = selectors.membership_of(user=request.user)
    if membership is None:
        raise Http404("No organization")
    if request.method == "GET":
        alone = not membership.organization.memberships.exclude(pk=membership.pk).exists()
        return _confirm(
            request,
            f"Leave {membership.organization.name}",
            "You are its last member: leaving closes the organization and forgets its key."
            if alone
            else "You no longer see your colleagues' checks, registrations and reports, nor use the organization's key.",
            "Leave",
            services.leave_blocker(user=request.user),
        )
    name = membership.organization.name
    return _act(request, lambda: services.organization_leave(user=request.user), f"You left {name}.")


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, invitation_token: str):
    """The invitation link: anyone may open it (the page says to sign up or sign in with the invited
    address); joining needs that account, signed in, with the address verified."""
    invitation = selectors.invitation_by_token(token=invitation_token)
    problem = selectors.invitation_problem(invitation=invitation)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={request.path}")
        if problem:
            messages.error(request, problem)
        else:
            try:
                membership = services.invitation_accept(user=request.user, token=invitation_token)
            except services.OrganizationError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, f"You joined {membership.organization.name}.")
                return redirect("organizations:index")
        return redirect(request.path)
    context = {
        "invitation": None if problem else invitation,
        "problem": problem,
        "current": selectors.organization_of(user=request.user),
    }
    return render(request, "organizations/join.html", context, status=200)
