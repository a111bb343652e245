"""A named lock held until the current transaction ends."""

from django.db import connection


def transaction_lock(name: str) -> None:
    """Until this transaction ends, one holder of `name` at a time: a PostgreSQL advisory lock. SQLite
    needs none: the portal opens its write transactions IMMEDIATE, so they already run one at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
