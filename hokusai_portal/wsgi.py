import os

from django.core.wsgi import get_wsgi_application

from hokusai_portal import runtime

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")
runtime.prepare()

application = get_wsgi_application()
