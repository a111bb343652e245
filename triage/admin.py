"""The admin for what the portal's pages do not reach. Writes that the workflow owns go through the
services (a timeline event per change, keys redacted); the workflow's own fields (status, resolution,
verdicts) are read-only here: change them on the investigation's page, where transitions are checked."""

from django.contrib import admin, messages

from . import services, sla
from .models import (
    ActionItem,
    Component,
    Finding,
    Investigation,
    InvestigationStat,
    Report,
    SlaCycle,
    SlaPolicy,
    TimelineEvent,
    WorkingCalendar,
)


@admin.register(Component)
class ComponentAdmin(admin.ModelAdmin):
    list_display = ["name", "description"]
    search_fields = ["name"]


WORKFLOW_FIELDS = ["status", "resolution", "duplicate_of", "resolved_at", "created_at", "fingerprint", "reporter"]
# Derived from the timeline (triage/sla.py), or changed on the investigation's page where it leaves an event.
SLA_FIELDS = ["awaiting_reporter", "sla_due_at", "sla_warn_at", "sla_warned_for", "sla_breached"]
M2M_FIELDS = ("components", "status_components")
FINDING_VERDICT_FIELDS = ["status", "verdict_reason"]


class FindingInline(admin.StackedInline):
    model = Finding
    extra = 0
    readonly_fields = FINDING_VERDICT_FIELDS


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    extra = 0
    fields = ["position", "phase", "priority", "title", "done", "timeframe", "due"]


INLINE_WRITES = {
    Finding: (
        lambda actor, finding, changed: services.finding_save(finding=finding, actor=actor, changed=changed),
        lambda actor, finding: services.finding_remove(finding=finding, actor=actor),
    ),
    ActionItem: (
        lambda actor, item, changed: services.action_item_save(item=item, actor=actor, changed=changed),
        lambda actor, item: services.action_item_remove(item=item, actor=actor),
    ),
}


class ServiceWritesAdmin(admin.ModelAdmin):
    """A finding or action item edited on its own admin page: saved and deleted through the services too."""

    def save_model(self, request, obj, form, change):
        redactions = INLINE_WRITES[self.model][0](request.user, obj, form.changed_data if change else [])
        if redactions.count:
            self.message_user(request, redactions.message, messages.WARNING)

    def delete_model(self, request, obj):
        INLINE_WRITES[self.model][1](request.user, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Investigation)
class InvestigationAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "severity", "status", "resolution", "owner", "created_at"]
    list_filter = ["status", "severity", "resolution", "components"]
    search_fields = ["title", "summary"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = WORKFLOW_FIELDS + SLA_FIELDS
    filter_horizontal = ["components", "status_components"]
    inlines = [FindingInline, ActionItemInline]
    date_hierarchy = "created_at"

    def save_model(self, request, obj, form, change):
        plain = {name: form.cleaned_data[name] for name in form.changed_data if name not in M2M_FIELDS}
        if change:
            current = Investigation.objects.get(pk=obj.pk)
            redactions = services.investigation_update(investigation=current, actor=request.user, **plain)
            obj.refresh_from_db()
        else:
            fields = {name: form.cleaned_data[name] for name in form.cleaned_data if name not in M2M_FIELDS}
            created, redactions = services.investigation_create(actor=request.user, data=fields)
            obj.pk, obj._state.adding, obj._state.db = created.pk, False, created._state.db
            obj.refresh_from_db()
        if redactions.count:
            self.message_user(request, redactions.message, messages.WARNING)

    def save_related(self, request, form, formsets, change):
        investigation = form.instance
        services.investigation_set_components(
            investigation=investigation, actor=request.user, components=list(form.cleaned_data.get("components", []))
        )
        services.investigation_set_status_components(
            investigation=investigation,
            actor=request.user,
            components=list(form.cleaned_data.get("status_components", [])),
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        """The inlines' findings and action items go through the services: redacted, each change on the
        timeline (a plain formset.save() would store a pasted key and leave no trace)."""
        save, remove = INLINE_WRITES[formset.model]
        formset.save(commit=False)
        for removed in formset.deleted_objects:
            remove(request.user, removed)
        redactions = services.Redactions()
        for instance, changed in [*((new, []) for new in formset.new_objects), *formset.changed_objects]:
            found = save(request.user, instance, changed)
            redactions.count += found.count
            redactions.fields += found.fields
        if redactions.count:
            self.message_user(request, redactions.message, messages.WARNING)


@admin.register(Finding)
class FindingAdmin(ServiceWritesAdmin):
    list_display = ["title", "investigation", "status"]
    list_filter = ["status"]
    search_fields = ["title"]
    raw_id_fields = ["investigation"]
    readonly_fields = FINDING_VERDICT_FIELDS  # verdicts need a reason and leave a timeline event: the page does that


@admin.register(ActionItem)
class ActionItemAdmin(ServiceWritesAdmin):
    list_display = ["title", "investigation", "phase", "priority", "done"]
    list_filter = ["done", "priority"]
    raw_id_fields = ["investigation", "assignee"]


@admin.register(TimelineEvent)
class TimelineEventAdmin(admin.ModelAdmin):
    """Append-only: viewable, never edited or deleted here."""

    list_display = ["investigation", "kind", "field", "target", "old", "new", "actor", "action_id", "created_at"]
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


@admin.register(WorkingCalendar)
class WorkingCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "time_zone", "work_start", "work_end", "weekdays", "holiday_country"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    """Changing a goal recomputes the open investigations' clocks (the lists filter on them)."""

    list_display = ["severity", "first_response_minutes", "resolution_minutes", "calendar"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        sla.refresh_open(severity=obj.severity)


@admin.register(SlaCycle)
class SlaCycleAdmin(admin.ModelAdmin):
    list_display = ["investigation", "goal", "cycle", "severity", "elapsed_minutes", "goal_minutes", "met"]
    list_filter = ["goal", "severity", "met"]
    readonly_fields = [f.name for f in SlaCycle._meta.fields]

    def has_add_permission(self, request):
        return False
