from django.db import migrations

# PostgreSQL only (SQLite, the embedded default, is polled): NOTIFY check_run_changed '<run id>' when what
# a check page shows changes (a step saved; the run's status, attempt or queue trouble), delivered at
# commit. onboarding/waiting.py listens. Heartbeat (lease) updates notify nobody.
FORWARD = """
CREATE OR REPLACE FUNCTION onboarding_checkrun_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('check_run_changed', NEW.id::text);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION onboarding_checkstep_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('check_run_changed', NEW.run_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER onboarding_checkrun_notify AFTER UPDATE ON onboarding_checkrun FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.attempt IS DISTINCT FROM NEW.attempt
          OR OLD.enqueue_error IS DISTINCT FROM NEW.enqueue_error)
    EXECUTE FUNCTION onboarding_checkrun_notify();
CREATE TRIGGER onboarding_checkstep_notify AFTER INSERT ON onboarding_checkstep FOR EACH ROW
    EXECUTE FUNCTION onboarding_checkstep_notify();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS onboarding_checkstep_notify ON onboarding_checkstep;
DROP TRIGGER IF EXISTS onboarding_checkrun_notify ON onboarding_checkrun;
DROP FUNCTION IF EXISTS onboarding_checkstep_notify();
DROP FUNCTION IF EXISTS onboarding_checkrun_notify();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    """Check pages wait on a notification, not a poll (issue 27): triggers that NOTIFY on a run's change."""

    dependencies = [("onboarding", "0008_api_key_tier")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
