"""`{{ check.cause|doctor_guide }}`: the portal's guide for a doctor cause (onboarding.environment.GUIDES)."""

from django import template

from onboarding.environment import Guide, guide_for

register = template.Library()


@register.filter
def doctor_guide(cause: str) -> Guide | None:
    return guide_for(cause)
