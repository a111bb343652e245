"""Access token reads."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import AccessToken


def access_tokens_of(*, user) -> QuerySet[AccessToken]:
    return AccessToken.objects.filter(user=user)


def access_token_owned_by(*, user, token_id: int) -> AccessToken:
    """The user's own token, or 404 (another user's is not admitted to exist)."""
    return get_object_or_404(access_tokens_of(user=user), pk=token_id)
