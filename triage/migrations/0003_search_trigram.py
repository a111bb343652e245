"""On PostgreSQL, trigram indexes make the list's text search (ILIKE '%…%') an index scan at 100k rows.
Elsewhere (SQLite) this migration does nothing."""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS triage_investigation_title_trgm ON triage_investigation USING gin (UPPER(title) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS triage_investigation_summary_trgm ON triage_investigation USING gin (UPPER(summary) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS triage_investigation_title_trgm",
    "DROP INDEX IF EXISTS triage_investigation_summary_trgm",
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("triage", "0002_components")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
