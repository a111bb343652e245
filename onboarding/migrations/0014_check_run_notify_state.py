from django.db import migrations

# PostgreSQL only. A run's change is now also announced with what its state became, on its own channel:
# `NOTIFY check_run_state '<run id>:<status>.<steps saved>.<attempt>.<queue trouble 0|1>'`, the token of
# onboarding.selectors.check_run_state. A waiting check page (onboarding/waiting.py) then knows the new state
# without a query of its own per notification: ~10 a check, each a thread hop and a round trip in the web
# (issue 27). Computed once per change in the writer's transaction, whoever waits.
#
# - The triggers are deferred to commit, so the token is the run's state as the transaction leaves it (a
#   retried run's claim and the deletion of the earlier attempt's steps give one token, not a passing one)
#   and a statement racing another's commit reads what that one committed.
# - 0009's `check_run_changed '<run id>'` is still sent: during a rolling deploy the web processes of the
#   version before listen there and would otherwise miss every change. The next release drops it.
TOKEN = """r.status || '.' || (SELECT count(*) FROM onboarding_checkstep WHERE run_id = r.id) || '.'
        || r.attempt || '.' || (CASE WHEN r.enqueue_error <> '' THEN 1 ELSE 0 END)"""
FORWARD = f"""
CREATE OR REPLACE FUNCTION onboarding_checkrun_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('check_run_changed', NEW.id::text);
    PERFORM pg_notify('check_run_state', r.id::text || ':' || {TOKEN}) FROM onboarding_checkrun r WHERE r.id = NEW.id;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION onboarding_checkstep_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('check_run_changed', NEW.run_id::text);
    PERFORM pg_notify('check_run_state', r.id::text || ':' || {TOKEN}) FROM onboarding_checkrun r WHERE r.id = NEW.run_id;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS onboarding_checkrun_notify ON onboarding_checkrun;
DROP TRIGGER IF EXISTS onboarding_checkstep_notify ON onboarding_checkstep;
CREATE CONSTRAINT TRIGGER onboarding_checkrun_notify AFTER UPDATE ON onboarding_checkrun
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.attempt IS DISTINCT FROM NEW.attempt
          OR OLD.enqueue_error IS DISTINCT FROM NEW.enqueue_error)
    EXECUTE FUNCTION onboarding_checkrun_notify();
CREATE CONSTRAINT TRIGGER onboarding_checkstep_notify AFTER INSERT ON onboarding_checkstep
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION onboarding_checkstep_notify();
"""
# 0009's functions and triggers: the run id alone, at the statement.
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
DROP TRIGGER IF EXISTS onboarding_checkrun_notify ON onboarding_checkrun;
DROP TRIGGER IF EXISTS onboarding_checkstep_notify ON onboarding_checkstep;
CREATE TRIGGER onboarding_checkrun_notify AFTER UPDATE ON onboarding_checkrun FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.attempt IS DISTINCT FROM NEW.attempt
          OR OLD.enqueue_error IS DISTINCT FROM NEW.enqueue_error)
    EXECUTE FUNCTION onboarding_checkrun_notify();
CREATE TRIGGER onboarding_checkstep_notify AFTER INSERT ON onboarding_checkstep FOR EACH ROW
    EXECUTE FUNCTION onboarding_checkstep_notify();
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
