from django.contrib import admin

from .models import Maintenance, PlatformComponent, ProbeResult, Rollup


@admin.register(PlatformComponent)
class PlatformComponentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "probe", "manual_state", "position"]
    list_editable = ["manual_state", "position"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Maintenance)
class MaintenanceAdmin(admin.ModelAdmin):
    list_display = ["title", "starts_at", "ends_at"]
    filter_horizontal = ["components"]
    date_hierarchy = "starts_at"


@admin.register(ProbeResult)
class ProbeResultAdmin(admin.ModelAdmin):
    """What the probes saw: read-only (uptime is computed from it)."""

    list_display = ["component", "at", "ok", "latency_ms", "cause", "muted"]
    list_filter = ["component", "ok", "muted"]
    readonly_fields = [f.name for f in ProbeResult._meta.fields]
    list_select_related = ["component"]

    def has_add_permission(self, request):
        return False


@admin.register(Rollup)
class RollupAdmin(admin.ModelAdmin):
    list_display = ["component", "kind", "start", "successes", "total"]
    list_filter = ["kind", "component"]
    readonly_fields = [f.name for f in Rollup._meta.fields]
    list_select_related = ["component"]

    def has_add_permission(self, request):
        return False
