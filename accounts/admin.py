# Users and groups use Django's own admin (django.contrib.auth); accounts adds no model.
