from datetime import timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import Role, role_required
from hokusai_portal.query import local_midnight

from . import services
from .forms import EndpointForm, RedeliverRangeForm
from .models import Delivery, Endpoint, EventType

support_only = role_required(Role.SUPPORT)


@support_only
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest):
    form = EndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.endpoint_create(owner=request.user, **form.cleaned_data)
        except services.EndpointError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Endpoint added. Give its signing secret (below) to the receiver.")
            return redirect("webhooks:endpoint", pk=endpoint.pk)
    page = Paginator(Endpoint.objects.select_related("owner"), 25).get_page(request.GET.get("page"))
    return render(request, "webhooks/index.html", {"form": form, "page": page, "event_types": EventType.choices})


@support_only
@require_http_methods(["GET", "POST"])
def endpoint(request: HttpRequest, pk: int):
    endpoint = get_object_or_404(Endpoint, pk=pk)
    form = EndpointForm(
        request.POST if request.method == "POST" else None,
        initial={
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": endpoint.event_types,
            "legacy_headers": endpoint.legacy_headers,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(endpoint=endpoint, **form.cleaned_data)
        except services.EndpointError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Saved.")
            return redirect("webhooks:endpoint", pk=pk)
    deliveries = Delivery.objects.filter(endpoint=endpoint).select_related("message").prefetch_related("attempt_log")
    status = request.GET.get("status")
    if status in Delivery.Status.values:
        deliveries = deliveries.filter(status=status)
    context = {
        "endpoint": endpoint,
        "form": form,
        "secret": services.secret_of(endpoint),
        "page": Paginator(deliveries, 25).get_page(request.GET.get("page")),
        "range_form": RedeliverRangeForm(),
        "status": status if status in Delivery.Status.values else "",
        "statuses": Delivery.Status.choices,
        "query": f"status={status}" if status in Delivery.Status.values else "",
    }
    return render(request, "webhooks/endpoint.html", context)


@support_only
@require_POST
def endpoint_action(request: HttpRequest, pk: int):
    """Enable, disable, or rotate the secret."""
    endpoint = get_object_or_404(Endpoint, pk=pk)
    action = request.POST.get("action")
    if action == "rotate":
        services.secret_rotate(endpoint=endpoint)
        messages.success(request, "New secret: both the new and the old one sign for the next 24 hours.")
    elif action in ("enable", "disable"):
        services.endpoint_enable(endpoint=endpoint, enabled=action == "enable")
        messages.success(request, "Enabled." if action == "enable" else "Disabled: nothing more is sent.")
    else:
        messages.error(request, "Unknown action.")
    return redirect("webhooks:endpoint", pk=pk)


@support_only
@require_POST
def redeliver_range(request: HttpRequest, pk: int):
    endpoint = get_object_or_404(Endpoint, pk=pk)
    form = RedeliverRangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("webhooks:endpoint", pk=pk)
    start, end = (
        local_midnight(form.cleaned_data["start"]),
        local_midnight(form.cleaned_data["end"] + timedelta(days=1)),
    )
    count = services.redeliver(deliveries=services.failures_in(endpoint=endpoint, start=start, end=end))
    messages.success(request, f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again (same message ids).")
    return redirect("webhooks:endpoint", pk=pk)


@support_only
@require_POST
def redeliver_one(request: HttpRequest, pk: int):
    delivery = get_object_or_404(Delivery, pk=pk)
    if services.redeliver(deliveries=Delivery.objects.filter(pk=pk)):
        messages.success(request, f"{delivery.message.msg_id} queued again.")
    else:
        messages.error(request, "It is already pending, or its endpoint is disabled.")
    return redirect("webhooks:endpoint", pk=delivery.endpoint_id)
