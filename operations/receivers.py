from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from hokusai_portal import metrics


@receiver(user_login_failed)
def _count_login_failure(sender, credentials=None, request=None, **kwargs) -> None:
    metrics.login_failures_total.inc()
