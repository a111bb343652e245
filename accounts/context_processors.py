from .roles import Role, roles_of


def roles(request):
    user_roles = roles_of(request.user) if hasattr(request, "user") else set()
    return {
        "is_developer": Role.DEVELOPER in user_roles,
        "is_support": Role.SUPPORT in user_roles,
        "is_manager": Role.MANAGER in user_roles,
    }
