"""The audit trail in the admin: read-only, filterable, exportable as CSV; no row can be changed or deleted."""

import csv

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.http import HttpResponse

CSV_COLUMNS = ["timestamp", "actor", "remote_addr", "action", "resource", "object_pk", "object", "changes", "cid"]


@admin.action(description="Export the selected entries as CSV")
def export_csv(modeladmin, request, queryset):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for entry in queryset.select_related("actor", "content_type").order_by("timestamp", "id"):
        writer.writerow(
            [
                entry.timestamp.isoformat(),
                entry.actor.get_username() if entry.actor else entry.actor_email or "",
                entry.remote_addr or "",
                entry.get_action_display(),
                f"{entry.content_type.app_label}.{entry.content_type.model}",
                entry.object_pk,
                _safe_cell(entry.object_repr),
                _safe_cell(entry.changes_display_dict and str(entry.changes_display_dict) or ""),
                entry.cid or "",
            ]
        )
    return response


def _safe_cell(text: str) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula (CSV injection): keep it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class AuditTrailAdmin(LogEntryAdmin):
    list_filter = [*LogEntryAdmin.list_filter, "actor"]
    actions = [export_csv]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # append-only: the database refuses it too


admin.site.unregister(LogEntry)
admin.site.register(LogEntry, AuditTrailAdmin)
