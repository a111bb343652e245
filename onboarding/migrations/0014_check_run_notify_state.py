from django.db import migrations

# PostgreSQL only. The notification of 0009_check_run_notify now carries what the run's state became:
# `NOTIFY check_run_changed '<run id>:<status>.<steps saved>.<attempt>.<queue trouble 0|1>'`, the token of
# onboarding.selectors.check_run_state. A waiting check page (onboarding/waiting.py) then knows the new state
# without a query of its own per notification: ~10 a check, each a thread hop and a round trip in the web
# (issue 27). Computed in the writer's transaction, once per change, whoever waits.
TOKEN = """{run}.status || '.' || (SELECT count(*) FROM onboarding_checkstep WHERE run_id = {run}.id) || '.'
        || {run}.attempt || '.' || (CASE WHEN {run}.enqueue_error <> '' THEN 1 ELSE 0 END)"""
FORWARD = f"""
CREATE OR REPLACE FUNCTION onboarding_checkrun_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('check_run_changed', NEW.id::text || ':' || {TOKEN.format(run="NEW")});
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION onboarding_checkstep_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('check_run_changed', r.id::text || ':' || {TOKEN.format(run="r")})
        FROM onboarding_checkrun r WHERE r.id = NEW.run_id;
    RETURN NULL;
END $$;
"""
# 0009's functions: the run id alone.
BACKWARD = """
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
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    """A run's change notification says what its state became (issue 27)."""

    dependencies = [("onboarding", "0013_checkstep_order_by_run_column")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
