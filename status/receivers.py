"""Status's answers to the signals of the apps below it (the layers: onboarding never imports status)."""

from django.dispatch import receiver

from onboarding.signals import check_page_context

from . import selectors

# The components whose probes a connectivity or registration check depends on.
CHECK_DEPENDS_ON = frozenset({"gateway", "registry", "artifacts"})


@receiver(check_page_context, dispatch_uid="status_platform_degraded")
def platform_degraded_on_check_page(*, full_page: bool, **kwargs) -> dict:
    """What the check depends on, from the status page's probes: a degraded component is named first (on the
    full page; an htmx poll swaps only the run's section)."""
    return {"platform_degraded": selectors.degraded_for(set(CHECK_DEPENDS_ON))} if full_page else {}
