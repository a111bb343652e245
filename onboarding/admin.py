from django.contrib import admin

from .models import (
    ApiKey,
    CheckRun,
    CheckStep,
    DeveloperProgress,
    EnvironmentCheck,
    EnvironmentReport,
    OrganizationApiKey,
    Registration,
    WorkerHeartbeat,
)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["masked", "user", "key_tier", "updated_at"]
    search_fields = ["user__username", "masked"]
    # The ciphertext is never shown or editable here.
    fields = ["user", "masked", "key_tier", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False


@admin.register(OrganizationApiKey)
class OrganizationApiKeyAdmin(admin.ModelAdmin):
    list_display = ["masked", "organization", "key_tier", "saved_by", "updated_at"]
    search_fields = ["organization__name", "masked"]
    # The ciphertext is never shown or editable here; the owner saves the key on the organization's page.
    fields = ["organization", "masked", "key_tier", "saved_by", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False


class CheckStepInline(admin.TabularInline):
    model = CheckStep
    extra = 0
    fields = ["position", "title", "status", "cause", "message", "duration_ms", "evidence"]
    readonly_fields = fields
    can_delete = False


@admin.register(CheckRun)
class CheckRunAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "organization", "kind", "status", "cause", "key_masked", "key_source", "created_at"]
    list_filter = ["kind", "status", "cause"]
    search_fields = ["user__username", "cause", "model_name"]
    readonly_fields = [f.name for f in CheckRun._meta.fields]
    inlines = [CheckStepInline]
    list_select_related = ["user"]


@admin.register(CheckStep)
class CheckStepAdmin(admin.ModelAdmin):
    list_display = ["run", "position", "title", "status", "cause", "duration_ms"]
    list_filter = ["status", "cause"]
    readonly_fields = [f.name for f in CheckStep._meta.fields]
    list_select_related = ["run"]


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ["model_name", "version", "token_id", "user", "failed", "created_at"]
    list_filter = ["failed"]
    search_fields = ["model_name", "token_id", "user__username"]
    raw_id_fields = ["user", "check_run"]


@admin.register(DeveloperProgress)
class DeveloperProgressAdmin(admin.ModelAdmin):
    list_display = ["user", "signed_up_at", "key_saved_at", "connectivity_passed_at", "registered_at"]
    raw_id_fields = ["user"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "pid", "started_at", "beat_at"]
    readonly_fields = [f.name for f in WorkerHeartbeat._meta.fields]

    def has_add_permission(self, request):
        return False  # only workers write these


class EnvironmentCheckInline(admin.TabularInline):
    model = EnvironmentCheck
    extra = 0
    fields = ["position", "name", "status", "cause", "message", "remedy", "evidence"]
    readonly_fields = fields
    can_delete = False


@admin.register(EnvironmentReport)
class EnvironmentReportAdmin(admin.ModelAdmin):
    """Reports are what a developer's machine said: read-only here (a changed report would be a false one)."""

    list_display = ["id", "user", "ok", "network", "doctor_version", "key_matches", "created_at"]
    list_filter = ["ok", "network", "key_matches", "checks__cause"]
    search_fields = ["user__username", "checks__cause"]
    readonly_fields = [f.name for f in EnvironmentReport._meta.fields]
    inlines = [EnvironmentCheckInline]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False


@admin.register(EnvironmentCheck)
class EnvironmentCheckAdmin(admin.ModelAdmin):
    list_display = ["report", "position", "name", "status", "cause"]
    list_filter = ["status", "cause"]
    readonly_fields = [f.name for f in EnvironmentCheck._meta.fields]

    def has_add_permission(self, request):
        return False
