"""The public status page, its JSON (Statuspage's summary shape) and a badge per component. No login."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods

from .models import ComponentState
from .selectors import IMPACT, INCIDENT_STATUS, status_summary

BADGE_COLOURS = {
    ComponentState.OPERATIONAL: "#2e7d32",
    ComponentState.UNDER_MAINTENANCE: "#1565c0",
    ComponentState.DEGRADED: "#f9a825",
    ComponentState.PARTIAL_OUTAGE: "#ef6c00",
    ComponentState.MAJOR_OUTAGE: "#c62828",
}


def _cacheable(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = f"public, max-age={settings.STATUS_CACHE_SECONDS}"
    return response


BAR_COLOURS = {"ok": "#43a047", "minor": "#f9a825", "major": "#e53935", "none": "#bdbdbd"}


def bars_svg(name: str, bars: list[dict]) -> str:
    """90 daily bars as one inline SVG built here (a template loop over 90 × N elements was most of the
    page's time). Every value in it is a date, a number or a fixed word; the name is escaped."""
    rects = "".join(
        f'<rect x="{i * 4}" width="3" height="24" fill="{BAR_COLOURS[bar["level"]]}"><title>{bar["day"]:%Y-%m-%d}: '
        + ("no data" if bar["uptime"] is None else f"{bar['uptime']} % of {bar['total']} probes")
        + "</title></rect>"
        for i, bar in enumerate(bars)
    )
    label = escape(f"Daily uptime of {name}, last {len(bars)} days")
    return mark_safe(  # noqa: S308 - built from dates, numbers and fixed words; the label is escaped
        f'<svg class="bars" viewBox="0 0 {len(bars) * 4} 24" preserveAspectRatio="none" role="img" '
        f'aria-label="{label}">{rects}</svg>'
    )


@require_http_methods(["GET", "HEAD"])
def page(request: HttpRequest):
    summary = status_summary()
    components = [(status, bars_svg(status.component.name, status.bars)) for status in summary["components"]]
    context = {"summary": summary, "components": components, "cache_key": summary["now"].isoformat()}
    return _cacheable(render(request, "status/page.html", context))


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@require_http_methods(["GET", "HEAD"])
def summary_json(request: HttpRequest):
    """Statuspage's /api/v2/summary.json shape: page, status, components, incidents, scheduled_maintenances."""
    summary = status_summary()
    now = summary["now"]
    components = [
        {
            "id": status.component.slug,
            "name": status.component.name,
            "status": status.state,
            "description": status.component.description or None,
            "position": status.component.position,
            "created_at": _iso(status.component.created_at),
            "updated_at": _iso(status.checked_at or now),
            "showcase": True,
            "group": False,
            "group_id": None,
            "only_show_if_degraded": False,
            "monitored": status.monitored,
            "uptime_90d": status.uptime,
        }
        for status in summary["components"]
    ]
    incidents = [
        {
            "id": investigation.number,
            "name": investigation.title,
            "status": INCIDENT_STATUS.get(investigation.status, "investigating"),
            "impact": IMPACT.get(investigation.severity, "minor"),
            "created_at": _iso(investigation.created_at),
            "updated_at": _iso(investigation.updated_at),
            "started_at": _iso(investigation.created_at),
            "resolved_at": _iso(investigation.resolved_at),
            "shortlink": request.build_absolute_uri(f"/status/#{investigation.number}"),
            "components": [c.slug for c in investigation.status_components.all()],
            "incident_updates": [
                {
                    "id": event.pk,
                    "status": INCIDENT_STATUS.get(investigation.status, "investigating"),
                    "body": event.body or f"{event.what}: {event.old_text} → {event.new_text}",
                    "created_at": _iso(event.created_at),
                    "display_at": _iso(event.created_at),
                }
                for event in investigation.public_updates
            ],
        }
        for investigation in summary["incidents"]
    ]
    maintenances = [
        {
            "id": maintenance.pk,
            "name": maintenance.title,
            "status": state,
            "impact": "maintenance",
            "scheduled_for": _iso(maintenance.starts_at),
            "scheduled_until": _iso(maintenance.ends_at),
            "created_at": _iso(maintenance.created_at),
            "components": [c.slug for c in maintenance.components.all()],
            "incident_updates": [{"body": maintenance.description}] if maintenance.description else [],
        }
        for maintenance, state in summary["maintenances"]
    ]
    body = {
        "page": {
            "id": "hokusai",
            "name": "Hokusai platform",
            "url": request.build_absolute_uri("/status/"),
            "time_zone": "Etc/UTC",
            "updated_at": _iso(now),
        },
        "status": {"indicator": summary["indicator"], "description": summary["description"]},
        "components": components,
        "incidents": incidents,
        "scheduled_maintenances": maintenances,
    }
    return _cacheable(JsonResponse(body, json_dumps_params={"ensure_ascii": False}))


@require_http_methods(["GET", "HEAD"])
def badge(request: HttpRequest, slug: str):
    """A shields-style SVG: the component's name and its state."""
    summary = status_summary()
    status = next((s for s in summary["components"] if s.component.slug == slug), None)
    if status is None:
        raise Http404("No such component.")
    left, right = status.component.name, status.label.lower()
    left_width, right_width = 10 + 7 * len(left), 10 + 7 * len(right)
    width = left_width + right_width
    colour = BADGE_COLOURS[ComponentState(status.state)]
    svg = render(
        request,
        "status/badge.svg",
        {
            "left": left,
            "right": right,
            "left_width": left_width,
            "right_width": right_width,
            "width": width,
            "left_mid": left_width / 2,
            "right_mid": left_width + right_width / 2,
            "colour": colour,
            "state": status.state,
        },
        content_type="image/svg+xml; charset=utf-8",
    )
    return _cacheable(svg)
