"""Settings for the Hokusai portal: every value comes from the environment, with
embedded defaults that run the whole portal on one machine with no services
(SQLite, kombu's filesystem broker, the local devstack registry)."""

import os
import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    return int(os.getenv(name, default))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


# Runtime state (SQLite file, broker folders, generated dev secrets) lives here.
VAR_DIR = Path(os.getenv("PORTAL_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# `development` (the default: `make run`, the tests) generates its secrets under var/ and serves plain
# HTTP on this machine; `production` (`make production`, any real deployment) takes every secret and
# service from the environment, refuses the embedded defaults and sends cookies over HTTPS only.
PORTAL_ENV = os.getenv("PORTAL_ENV", "development").strip().lower()
if PORTAL_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"PORTAL_ENV must be development or production, not {PORTAL_ENV!r}")
PRODUCTION = PORTAL_ENV == "production"
# Off unless asked for, in every mode: a debug page shows settings and tracebacks to whoever hits an error.
DEBUG = envbool("DEBUG", "False")


def _production_refusals() -> list[str]:
    """What keeps production mode from starting: each missing secret or embedded default, named."""
    refusals = [
        f"{name} must be set" for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS") if not os.getenv(name, "").strip()
    ]
    database_url = os.getenv("DATABASE_URL", "").strip()
    if not database_url.startswith(("postgres://", "postgresql://")):
        refusals.append("DATABASE_URL must name a PostgreSQL database (SQLite is the embedded default)")
    if not os.getenv("CELERY_BROKER_URL", "").strip().startswith(("redis://", "rediss://", "amqp://", "amqps://")):
        refusals.append("CELERY_BROKER_URL must name a Redis or RabbitMQ broker (the filesystem broker is embedded)")
    return refusals


if PRODUCTION and (_refusals := _production_refusals()):
    raise ImproperlyConfigured("PORTAL_ENV=production refuses to start: " + "; ".join(_refusals) + ".")


def _secret(name: str, make) -> str:
    """Read a secret from the environment; in development, fall back to one generated
    once and kept under var/ so restarts keep sessions and ciphertexts valid."""
    value = os.getenv(name, "").strip()
    if value:
        return value
    path = VAR_DIR / f"dev-{name.lower().replace('_', '-')}"
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = _secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))
# Comma-separated Fernet keys: the first encrypts, every one decrypts (rotation).
FIELD_ENCRYPTION_KEYS = [k.strip() for k in _secret("FIELD_ENCRYPTION_KEYS", _fernet_key).split(",") if k.strip()]

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "accounts",
    "onboarding",
    "triage",
    "dashboard",
    "status",
    "notifications",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hokusai_portal.middleware.ContentSecurityPolicy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "hokusai_portal.middleware.RefuseNulBytes",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "hokusai_portal.urls"
# Sent on every answer by hokusai_portal.middleware.ContentSecurityPolicy.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    },
]

WSGI_APPLICATION = "hokusai_portal.wsgi.application"
ASGI_APPLICATION = "hokusai_portal.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        # Persistent connections: a new PostgreSQL connection per request cost ~75 ms of the database's CPU
        # and a share of the web's per check under load (bench/load.py). Checked before reuse.
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", "60"),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so a Celery worker process sees the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-portal.sqlite3")}
    # Web, worker and admin commands write concurrently: wait instead of "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# Development serves static files from the apps' folders; production from `collectstatic`'s hashed copies.
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if not PRODUCTION
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security: HTTPS-only in production (`manage.py check --deploy` is clean); plain HTTP on this machine otherwise.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", str(PRODUCTION))
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", str(PRODUCTION))
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", str(PRODUCTION))
# Load balancers and the supervisor's readiness wait probe /healthz over plain HTTP on the host.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000" if PRODUCTION else "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if envbool("SECURE_PROXY_SSL_HEADER", "False"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: embedded default is kombu's filesystem transport under var/ (no service needed).
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Results are domain rows (CheckRun/CheckStep), never the Celery result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Periodic work, one `celery beat` per deployment. The sweep ends or re-queues runs whose worker is gone
# (onboarding/lifecycle.py); a sweep older than its period is dropped, not run late.
CELERY_BEAT_SCHEDULE = {
    "check-runs-sweep": {
        "task": "onboarding.check_runs_sweep",
        "schedule": envint("CHECK_RUNS_SWEEP_SECONDS", "1"),
        "options": {"expires": 5},
    },
    # The status page's synthetic probes (status/probes.py) and their retention.
    "status-probes": {
        "task": "status.probes_run",
        "schedule": envint("STATUS_PROBE_SECONDS", "60"),
        "options": {"expires": 30},
    },
    "status-prune": {"task": "status.prune", "schedule": 3600, "options": {"expires": 600}},
    "sla-warnings": {"task": "triage.sla_warnings", "schedule": 60, "options": {"expires": 30}},
    # The outbox: a change asks a worker to send at once; this catches what that missed and the retries.
    "outbox-send": {
        "task": "notifications.outbox_send",
        "schedule": envint("OUTBOX_SEND_SECONDS", "30"),
        "options": {"expires": 25},
    },
    # Webhook deliveries that are due (a change also asks at once); retries follow the spec's schedule.
    "webhooks-deliver": {
        "task": "webhooks.deliver_due",
        "schedule": envint("WEBHOOK_DELIVER_SECONDS", "5"),
        "options": {"expires": 5},
    },
    "digests-send": {"task": "notifications.digests_send", "schedule": 24 * 3600, "options": {"expires": 3600}},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# The registry the portal checks against: operator settings only, never user input (no SSRF).
HOKUSAI_REGISTRY_URL = os.getenv("HOKUSAI_REGISTRY_URL", "http://127.0.0.1:5000").rstrip("/")
# PEM file of the CAs a registry's certificate may chain to (a private CA); empty: certifi's, as MLflow's client.
HOKUSAI_REGISTRY_CA_BUNDLE = os.getenv("HOKUSAI_REGISTRY_CA_BUNDLE", "")
# Email (notifications). Development keeps mail on this machine: one .log file per message under
# var/mail/ (EMAIL_FILE_PATH); production sends through SMTP with the EMAIL_* settings.
EMAIL_BACKEND = os.getenv(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PORTAL_ENV == "production"
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = os.getenv("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = os.getenv("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.getenv("EMAIL_USE_TLS", "0") == "1"
EMAIL_USE_SSL = os.getenv("EMAIL_USE_SSL", "0") == "1"
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", "10")
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "Hokusai portal <portal@localhost>")
# Links in email point here (the portal's public address).
PORTAL_BASE_URL = os.getenv("PORTAL_BASE_URL", f"http://127.0.0.1:{os.getenv('PORTAL_PORT', '8000')}")

# The status page's probes call the registry with this service key (an operator's read-only key; never shown).
# Empty: the gateway, registry and artifact store are shown as not monitored.
STATUS_PROBE_API_KEY = os.getenv("STATUS_PROBE_API_KEY", "")
# /status/, /status.json and the badges share one computed summary for this many seconds.
STATUS_CACHE_SECONDS = envint("STATUS_CACHE_SECONDS", "10")
# The SDK build developers should have (a git commit of hokusai-ml-platform, 7-40 hex digits): the environment
# doctor the portal serves warns SDK_BUILD_STALE when the installed build differs. Empty: not checked.
HOKUSAI_SDK_COMMIT = os.getenv("HOKUSAI_SDK_COMMIT", "").strip()
if HOKUSAI_SDK_COMMIT and not re.fullmatch(r"[0-9a-fA-F]{7,40}", HOKUSAI_SDK_COMMIT):
    raise ImproperlyConfigured(
        f"HOKUSAI_SDK_COMMIT must be a git commit (7 to 40 hex digits), not {HOKUSAI_SDK_COMMIT!r}"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}

# Cache (rate limits): per-process memory by default; share one across web processes with CACHE_URL=redis://...
CACHE_URL = os.getenv("CACHE_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL.startswith(("redis://", "rediss://"))
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Proxies in front that append to X-Forwarded-For (a load balancer: 1). 0: the client is REMOTE_ADDR.
TRUSTED_PROXY_HOPS = int(os.getenv("TRUSTED_PROXY_HOPS", "0"))

# Read-only tokens for GET /api/status (comma-separated), for tools without a session.
STATUS_API_TOKENS = envlist("STATUS_API_TOKENS", "")
