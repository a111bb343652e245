"""The follow form on an investigation's page, drawn by notifications so triage never imports it (layers)."""

from django import template

from accounts.roles import Role, has_role

from .. import services

register = template.Library()


@register.inclusion_tag("notifications/follow_form.html", takes_context=True)
def follow_form(context, investigation):
    user = context["request"].user
    return {
        "investigation": investigation,
        "csrf_token": context.get("csrf_token"),
        **services.follow_state(user=user, investigation=investigation),
        # Staff see how many follow it; a developer is not told about other developers.
        "followers": services.followers_count(investigation.pk) if has_role(user, Role.SUPPORT, Role.MANAGER) else None,
    }
