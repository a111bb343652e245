from django.contrib import admin

from .models import ActionItem, Component, Finding, Investigation, InvestigationStat, Report, TimelineEvent


@admin.register(Component)
class ComponentAdmin(admin.ModelAdmin):
    list_display = ["name", "description"]
    search_fields = ["name"]


class FindingInline(admin.StackedInline):
    model = Finding
    extra = 0


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    extra = 0
    fields = ["position", "phase", "priority", "title", "done", "timeframe", "due"]


@admin.register(Investigation)
class InvestigationAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "severity", "status", "resolution", "owner", "created_at"]
    list_filter = ["status", "severity", "resolution", "components"]
    search_fields = ["title", "summary"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner", "reporter", "duplicate_of"]
    filter_horizontal = ["components"]
    inlines = [FindingInline, ActionItemInline]
    date_hierarchy = "created_at"


@admin.register(Finding)
class FindingAdmin(admin.ModelAdmin):
    list_display = ["title", "investigation", "status"]
    list_filter = ["status"]
    search_fields = ["title"]
    raw_id_fields = ["investigation"]


@admin.register(ActionItem)
class ActionItemAdmin(admin.ModelAdmin):
    list_display = ["title", "investigation", "phase", "priority", "done"]
    list_filter = ["done", "priority"]
    raw_id_fields = ["investigation", "assignee"]


@admin.register(TimelineEvent)
class TimelineEventAdmin(admin.ModelAdmin):
    """Append-only: viewable, never edited or deleted here."""

    list_display = ["investigation", "kind", "subject", "actor", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["investigation", "actor"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["investigation", "reporter", "check_run", "consent_rerun", "created_at"]
    raw_id_fields = ["investigation", "reporter", "check_run"]


@admin.register(InvestigationStat)
class InvestigationStatAdmin(admin.ModelAdmin):
    """Derived counts, read-only: `manage.py rebuild_investigation_stats` recomputes them."""

    list_display = ["kind", "period", "severity", "component", "metric", "key", "n", "total"]
    list_filter = ["kind", "metric", "severity"]
    date_hierarchy = "period"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
