import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# `filesystem://` means the portal's atomic filesystem transport (hokusai_portal/broker.py): kombu's own
# lets a reader see a half-written message. An alias, not `broker_transport`, so other URLs keep their scheme.
TRANSPORT_ALIASES["filesystem"] = "hokusai_portal.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")

app = Celery("hokusai_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
