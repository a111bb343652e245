from django.contrib import admin, messages

from . import services
from .models import AccessToken


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    """Tokens are made by their users (the account page or `create_access_token`); here they are seen and
    revoked. The token itself is nowhere to be seen: only its hash is kept."""

    list_display = ("name", "user", "hint", "created_at", "expires_at", "revoked_at", "last_used_at", "last_used_from")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "hint")
    readonly_fields = [field.name for field in AccessToken._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        revoked = sum(services.access_token_revoke(token=token) for token in queryset)
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)
