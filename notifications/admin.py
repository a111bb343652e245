from django.contrib import admin

from .models import Follow, Notification, OrganizationFollow, OrganizationFollowOptOut, OutboxEmail, Preference


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    list_display = ["user", "investigation", "reason", "created_at"]
    list_filter = ["reason"]
    raw_id_fields = ["user", "investigation"]


@admin.register(OrganizationFollow)
class OrganizationFollowAdmin(admin.ModelAdmin):
    """ "Everyone in my organization" follows: the organization's one choice per investigation."""

    list_display = ["organization", "investigation", "chosen_by", "created_at"]
    raw_id_fields = ["organization", "investigation", "chosen_by"]


@admin.register(OrganizationFollowOptOut)
class OrganizationFollowOptOutAdmin(admin.ModelAdmin):
    list_display = ["user", "organization_follow", "created_at"]
    raw_id_fields = ["user", "organization_follow"]


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "mode", "updated_at"]
    list_filter = ["mode"]
    raw_id_fields = ["user"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["user", "event", "digest", "digested_at", "created_at"]
    list_filter = ["digest"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(OutboxEmail)
class OutboxEmailAdmin(admin.ModelAdmin):
    """What is waiting for the mail server, what was sent, what was refused."""

    list_display = ["created_at", "to", "subject", "status", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["status"]
    search_fields = ["to", "subject"]
    readonly_fields = [f.name for f in OutboxEmail._meta.fields]

    def has_add_permission(self, request):
        return False
