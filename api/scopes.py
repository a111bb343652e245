"""The access tokens' scopes: what each lets a token do, and the roles whose members may hold it.

A token never does more than its user: a scope counts only while the user still has one of its roles
(checked at every use, not only when the token is made)."""

from dataclasses import dataclass

from accounts.roles import Role, roles_of


@dataclass(frozen=True)
class Scope:
    name: str
    label: str
    roles: frozenset[Role]


SCOPES = {
    scope.name: scope
    for scope in (
        Scope("checks:run", "Start connectivity checks with your saved key", frozenset({Role.DEVELOPER, Role.SUPPORT})),
        Scope("checks:read", "Read checks and their steps", frozenset(Role)),
        Scope("registrations:write", "Register models with your saved key", frozenset({Role.DEVELOPER, Role.SUPPORT})),
        Scope("investigations:read", "Read investigations (as the pages show them to you)", frozenset(Role)),
        Scope("investigations:write", "Comment on and move investigations (support)", frozenset({Role.SUPPORT})),
        Scope(
            "dashboard:read",
            "Read the dashboard's numbers (managers and support)",
            frozenset({Role.MANAGER, Role.SUPPORT}),
        ),
    )
}


def scopes_allowed(user) -> list[str]:
    """The scopes `user`'s roles allow now, in the order above."""
    roles = roles_of(user)
    return [name for name, scope in SCOPES.items() if scope.roles & roles]


def scope_allowed(user, name: str) -> bool:
    scope = SCOPES.get(name)
    return scope is not None and bool(scope.roles & roles_of(user))
