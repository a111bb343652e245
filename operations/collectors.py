"""Figures the database already holds, read at scrape time: the same answer from every web process,
true from the first scrape after a restart (no process has to have seen the event)."""

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from notifications.models import OutboxEmail
from onboarding.lifecycle import workers_alive
from onboarding.models import CheckRun
from status.models import ComponentState
from status.selectors import status_summary
from triage.models import SlaCycle
from webhooks.models import Delivery


class DatabaseCollector(Collector):
    def collect(self):
        now = timezone.now()
        by_status = dict(
            CheckRun.objects.filter(status__in=[CheckRun.Status.QUEUED, CheckRun.Status.RUNNING])
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        yield GaugeMetricFamily(
            "hokusai_checks_in_flight", "Check runs a worker is running now.", value=by_status.get("running", 0)
        )
        yield GaugeMetricFamily(
            "hokusai_checks_queued", "Check runs waiting for a worker now.", value=by_status.get("queued", 0)
        )
        yield GaugeMetricFamily(
            "hokusai_workers_alive", "Celery worker processes whose heartbeat is fresh.", value=workers_alive(now=now)
        )
        outbox = OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING)
        yield GaugeMetricFamily("hokusai_outbox_pending", "Emails waiting in the outbox.", value=outbox.count())
        oldest = outbox.order_by("created_at").values_list("created_at", flat=True).first()
        yield GaugeMetricFamily(
            "hokusai_outbox_oldest_pending_seconds",
            "Age of the oldest email waiting in the outbox (0: none).",
            value=(now - oldest).total_seconds() if oldest else 0,
        )
        yield GaugeMetricFamily(
            "hokusai_webhook_pending",
            "Webhook deliveries waiting to be sent or retried.",
            value=Delivery.objects.filter(status=Delivery.Status.PENDING).count(),
        )
        up = GaugeMetricFamily(
            "hokusai_status_component_up",
            "1 when the status page shows the component operational, else 0 (the page's own figures).",
            labels=["component"],
        )
        for status in status_summary()["components"]:
            up.add_metric([status.component.slug], 1 if status.state == ComponentState.OPERATIONAL else 0)
        yield up
        breaches = CounterMetricFamily(
            "hokusai_sla_breaches", "SLA goals breached, by goal and severity.", labels=["goal", "severity"]
        )
        for goal, severity, n in (
            SlaCycle.objects.filter(breached_at__isnull=False)
            .values_list("goal", "severity")
            .annotate(n=Count("id"))
            .values_list("goal", "severity", "n")
        ):
            breaches.add_metric([goal, severity], n)
        yield breaches
