"""OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set: OTLP over
HTTP, configured by the standard OTEL_* variables (service name, headers, sampler, batch delay).

A check is one trace: the web request that starts it (TraceRequests, a server span that continues a
caller's `traceparent`), the Celery task (opentelemetry-instrumentation-celery: the context travels in the
task's headers) and every registry call the worker makes (opentelemetry-instrumentation-requests); email
and webhook sends are spans of their own (webhooks go through requests; email: `span("email.send")`).

Set up after the fork, as the SDK's exporter threads need: gunicorn's post_fork (hokusai_portal/gunicorn_conf.py),
Celery's worker_init / worker_process_init (hokusai_portal/celery.py).

Django's own instrumentation (opentelemetry-instrumentation-django) is not used: its only release pins
opentelemetry-semantic-conventions 0.66b1, while the SDK installed here (1.45.2) needs 0.66b2."""

import contextlib
import os

from hokusai_portal.async_middleware import SyncAndAsync

_configured = False


def enabled() -> bool:
    return (
        any(
            os.getenv(name, "").strip()
            for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
        and os.getenv("OTEL_SDK_DISABLED", "").strip().lower() != "true"
    )


def setup(role: str) -> None:
    """The tracer provider of this process (`role`: web, worker, beat), once."""
    global _configured
    if _configured or not enabled():
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {"hokusai.process": role}
    if not os.getenv("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = f"hokusai-portal-{role}"
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    _configured = True


def shutdown() -> None:
    """Flush what is still batched (a worker or web process that stops)."""
    if _configured:
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
        if hasattr(provider, "shutdown"):
            provider.shutdown()


@contextlib.contextmanager
def span(name: str, **attributes):
    """A span of the portal's own (email sends); nothing when tracing is off."""
    if not _configured:
        yield None
        return
    from opentelemetry import trace

    with trace.get_tracer("hokusai_portal").start_as_current_span(name, attributes=attributes) as current:
        yield current


class TraceRequests(SyncAndAsync):
    """A server span per request, continuing the caller's W3C trace context, named by the URL route."""

    def sync_call(self, request):
        if not _configured:
            return self.get_response(request)
        with self._span(request) as server_span:
            response = self.get_response(request)
            self._finish(request, response, server_span)
        return response

    async def __acall__(self, request):
        if not _configured:
            return await self.get_response(request)
        with self._span(request) as server_span:
            response = await self.get_response(request)
            self._finish(request, response, server_span)
        return response

    @staticmethod
    def _span(request):
        from opentelemetry import trace
        from opentelemetry.propagate import extract
        from opentelemetry.trace import SpanKind

        return trace.get_tracer("hokusai_portal").start_as_current_span(
            f"{request.method} {request.path}",
            context=extract(dict(request.headers)),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.path},
        )

    @staticmethod
    def _finish(request, response, server_span) -> None:
        from opentelemetry.trace import Status, StatusCode

        match = getattr(request, "resolver_match", None)
        if match is not None and match.route:
            server_span.update_name(f"{request.method} /{match.route}")
            server_span.set_attribute("http.route", "/" + match.route)
        server_span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            server_span.set_status(Status(StatusCode.ERROR))
