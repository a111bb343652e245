from django.contrib import admin

from .models import Attempt, Delivery, Endpoint, Message


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    """Secrets are never shown or edited here: create and rotate them on /webhooks/."""

    list_display = ["url", "enabled", "disabled_reason", "failing_since", "owner", "created_at"]
    list_filter = ["enabled"]
    fields = [
        "url",
        "description",
        "event_types",
        "enabled",
        "disabled_reason",
        "legacy_headers",
        "owner",
        "failing_since",
    ]
    readonly_fields = ["failing_since", "disabled_reason"]
    raw_id_fields = ["owner"]

    def has_add_permission(self, request):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["msg_id", "event_type", "created_at"]
    list_filter = ["event_type"]
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request):
        return False


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    readonly_fields = ["at", "status_code", "duration_ms", "response_excerpt", "error", "succeeded"]
    can_delete = False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["message", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [AttemptInline]

    def has_add_permission(self, request):
        return False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["delivery", "at", "status_code", "duration_ms", "succeeded"]
    list_filter = ["succeeded"]
    readonly_fields = [f.name for f in Attempt._meta.fields]

    def has_add_permission(self, request):
        return False
