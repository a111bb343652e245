"""The ASGI application: `make run` and `make production` serve it with gunicorn's uvicorn workers
(WEB_SERVER=wsgi serves hokusai_portal.wsgi instead, the sync path). Long-polled check pages await a
notification here and hold no thread (onboarding/waiting.py); every other view runs its middleware in one
hop to its thread (hokusai_portal/handlers.py)."""

import os

from hokusai_portal import runtime
from hokusai_portal.handlers import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")
# Each request's sync code runs on a thread of its own: no connection kept per thread (SQLite: one per
# request, cheap); on PostgreSQL a pool per process lends them (settings.DATABASE_POOL).
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
os.environ.setdefault("DATABASE_POOL", "20")
runtime.prepare()

application = get_asgi_application()
