"""The audit trail is append-only in the database itself: a trigger refuses UPDATE and DELETE on
django-auditlog's rows, whoever asks (the ORM, the admin, a shell). One update is let through: a deleted
user's rows lose their actor (the foreign key's SET NULL), everything else kept as written.

PostgreSQL only (production requires it). The embedded SQLite of `make run` has no such trigger: Django empties
a SQLite test database with DELETE (PostgreSQL's TRUNCATE fires no row trigger), so a trigger there would
stop every test that leaves an audit row; the admin refuses changes and deletes on either."""

from django.db import migrations

POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION audit_trail_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL AND OLD.actor_id IS NOT NULL
           AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS audit_trail_append_only ON auditlog_logentry",
    """
    CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON auditlog_logentry
    FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only()
    """,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_trail_append_only ON auditlog_logentry",
    "DROP FUNCTION IF EXISTS audit_trail_append_only()",
]


def _run(statements: dict):
    def run(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)  # no parameters: the % in RAISE is literal

    return run


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0017_add_actor_email")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL}),
            _run({"postgresql": POSTGRESQL_REVERSE}),
        )
    ]
