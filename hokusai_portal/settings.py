"""Settings for the Hokusai portal: every value comes from the environment, with
embedded defaults that run the whole portal on one machine with no services
(SQLite, kombu's filesystem broker, the local devstack registry)."""

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from hokusai_portal import logs, runtime

BASE_DIR = Path(__file__).resolve().parent.parent


# Every variable is read here, through these helpers (nowhere else in the code), and a bad value is named.
# Importing settings creates no folder (runtime.prepare() does, called by every entry point); in development
# it may generate the secrets once (runtime.dev_secret).
def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        raise ImproperlyConfigured(f"{name} must be true or false (1/0, yes/no, on/off), not {value!r}")
    return value in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    value = os.getenv(name, default).strip()
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


# Runtime state (SQLite file, broker folders, generated dev secrets) lives here.
VAR_DIR = runtime.var_dir()

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


def _secret(name: str) -> str:
    """A secret from the environment; in development, the one runtime.prepare() generated once under var/
    (restarts keep sessions and ciphertexts valid)."""
    value = os.getenv(name, "").strip()
    if value or PRODUCTION:
        return value
    return runtime.dev_secret(VAR_DIR, name)


SECRET_KEY = _secret("SECRET_KEY")
# Comma-separated Fernet keys: the first encrypts, every one decrypts (rotation).
FIELD_ENCRYPTION_KEYS = [k.strip() for k in _secret("FIELD_ENCRYPTION_KEYS").split(",") if k.strip()]

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
    "organizations",  # a third-party company: members, invitations (issue 24)
    "onboarding",
    "triage",
    "dashboard",
    "status",
    "notifications",
    "webhooks",
    # The public API (/api/v1/, django-ninja: "ninja" for its bundled Swagger UI files, served from here).
    "ninja",
    "api",
]
if not PRODUCTION:  # demo_setup: the demo users and the seeded local registry of `make run`
    INSTALLED_APPS.append("devstack")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hokusai_portal.middleware.ContentSecurityPolicy",
    "hokusai_portal.middleware.StaticFiles",  # WhiteNoise, async-capable (the ASGI path holds no thread)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "hokusai_portal.middleware.RefuseMalformedInput",
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
# Launch-day scale (issue 27). DATABASE_POOL=<size> (hokusai_portal/asgi.py sets it for the ASGI web
# process): Django's ASGI handler runs each request's sync code on a thread of its own, so connections
# cannot persist per thread; a psycopg_pool pool per process lends them instead (PostgreSQL only).
DATABASE_POOL = envint("DATABASE_POOL", "0")
if DATABASE_POOL and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them (checked before lending: CONN_HEALTH_CHECKS)
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": DATABASE_POOL, "timeout": 10}

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
# The filesystem broker's folders (PORTAL_BROKER_DIR: a test process of its own under pytest-xdist).
BROKER_DIR = Path(os.getenv("PORTAL_BROKER_DIR", str(VAR_DIR / "broker"))).resolve()
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
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
# Celery 5.6+ closes a worker's database connections before and after every task (celery/celery#9824): on
# PostgreSQL a new session per check, ~15 ms of the database's CPU and ~3 ms of the worker's (issue 27).
# Its documented way out keeps them for this many tasks; hokusai_portal/celery.py then keeps them as Django
# does a request's (close_old_connections around each task: DATABASE_CONN_MAX_AGE, health checks, a
# connection an error left unusable).
CELERY_DB_REUSE_MAX = 1_000_000
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
# The run sweep runs in beat's own process (onboarding/worker.py), not as a task a worker must take: it judges
# the workers, so it cannot depend on them.
CHECK_RUNS_SWEEP_SECONDS = envint("CHECK_RUNS_SWEEP_SECONDS", "1")

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
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "0")
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", "0")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", "10")
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "Hokusai portal <portal@localhost>")
# Links in email point here (the portal's public address).
PORTAL_BASE_URL = os.getenv("PORTAL_BASE_URL", f"http://127.0.0.1:{os.getenv('PORTAL_PORT', '8000')}")

# The status page's probes call the registry with this service key (an operator's read-only key; never shown).
# Empty: the gateway, registry and artifact store are shown as not monitored.
STATUS_PROBE_API_KEY = os.getenv("STATUS_PROBE_API_KEY", "")
# Or a file holding it (a mounted secret). Development: the local registry's reader key, written by demo_setup.
STATUS_PROBE_API_KEY_FILE = os.getenv(
    "STATUS_PROBE_API_KEY_FILE", "" if PRODUCTION else str(VAR_DIR / "status-probe-key")
)
# /status/, /status.json and the badges share one computed summary for this many seconds.
STATUS_CACHE_SECONDS = envint("STATUS_CACHE_SECONDS", "10")
# The SDK build developers should have (a git commit of hokusai-ml-platform, 7-40 hex digits): the environment
# doctor the portal serves warns SDK_BUILD_STALE when the installed build differs. Empty: not checked.
HOKUSAI_SDK_COMMIT = os.getenv("HOKUSAI_SDK_COMMIT", "").strip()
if HOKUSAI_SDK_COMMIT and not re.fullmatch(r"[0-9a-fA-F]{7,40}", HOKUSAI_SDK_COMMIT):
    raise ImproperlyConfigured(
        f"HOKUSAI_SDK_COMMIT must be a git commit (7 to 40 hex digits), not {HOKUSAI_SDK_COMMIT!r}"
    )

# Log lines (hokusai_portal/logs.py): LOG_FORMAT=json gives one JSON object per line with the request, user,
# run and trace ids; plain (the default) gives readable lines. Keys and tokens are masked in either.
LOG_FORMAT = os.getenv("LOG_FORMAT", "plain").strip().lower() or "plain"
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = logs.logging_config(LOG_FORMAT, os.getenv("LOG_LEVEL", "INFO"))
if LOG_FORMAT == "json":  # a Celery worker keeps Django's handlers (JSON) instead of its own text format
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Cache (rate limits): per-process memory by default; share one across web processes with CACHE_URL=redis://...
CACHE_URL = os.getenv("CACHE_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL.startswith(("redis://", "rediss://"))
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Proxies in front that append to X-Forwarded-For (a load balancer: 1). 0: the client is REMOTE_ADDR.
TRUSTED_PROXY_HOPS = envint("TRUSTED_PROXY_HOPS", "0")

# Check pages that may long-poll at once per web process (each holds a thread while it waits); past that, a
# page polls every 500 ms.
CHECK_LONG_POLL_SLOTS = envint("CHECK_LONG_POLL_SLOTS", "2")
# A watching check page is sent at most one render of a running check per this many milliseconds: steps
# saved closer together arrive in one render. The verdict is never held back. 0: every step at once.
CHECK_STEP_RENDER_MS = envint("CHECK_STEP_RENDER_MS", "250")

# Read-only tokens for GET /api/status (comma-separated), for tools without a session.
STATUS_API_TOKENS = envlist("STATUS_API_TOKENS", "")
# The public API: requests per minute each access token may make (a sliding window; past it, 429 + Retry-After).
API_TOKEN_REQUESTS_PER_MINUTE = envint("API_TOKEN_REQUESTS_PER_MINUTE", "120")

# --- Accounts on django-allauth: verified email, reset, MFA (TOTP, passkeys, recovery codes), staff OIDC,
# sessions. See accounts/adapter.py for what the portal adds (roles, rate-limit keys, mail hand-off).
INSTALLED_APPS += [
    "django.contrib.humanize",  # allauth's MFA and sessions pages use it
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.usersessions",
]
MIDDLEWARE += [
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.UserSessions",  # allauth's UserSessionsMiddleware, async-capable
    # Support, managers and administrators who signed in with a password are sent to enrol a second factor.
    "accounts.middleware.StaffMultiFactorRequired",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm"}
SOCIALACCOUNT_ADAPTER = "accounts.adapter.SocialAccountAdapter"
MFA_ADAPTER = "accounts.adapter.MultiFactorAdapter"
# Developers sign up with an email; demo and operator-made accounts also sign in with their username.
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "optional"  # sign in at once; saving a key or getting mail waits for it
ACCOUNT_CONFIRM_EMAIL_ON_GET = False  # mail scanners open links: the link shows a button that POSTs
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_CHANGE_EMAIL = True  # one address; a new one replaces the old only once verified
ACCOUNT_EMAIL_NOTIFICATIONS = True  # password and email changes are told to the account's address
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False  # a link, confirmed by a form POST, valid PASSWORD_RESET_TIMEOUT
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT", str(3 * 3600))
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False  # Django keeps this session; usersessions ends the others
USERSESSIONS_TRACK_ACTIVITY = True
ACCOUNT_SESSION_REMEMBER = None  # the "Remember me" box
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Hokusai Portal] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
# Rate limits (allauth's, sliding per rate; the sign-in keys are the adapter's: accounts/adapter.py).
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",  # a throttle per address: an office behind one NAT slows down, is never locked out
    "login_failed": "5/15m/key",  # per account+address, or per account+known browser (device cookie)
    "login_failed_account": "20/15m/key",  # per account, from browsers that never signed in to it
    "signup": "10/h/ip",
    "reset_password": "10/h/ip,3/h/key",
    "reset_password_from_key": "20/m/ip",
    "confirm_email": "1/3m/key",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "Hokusai Portal"
MFA_RECOVERY_CODE_COUNT = 10
# WebAuthn wants HTTPS; development serves plain HTTP on 127.0.0.1.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not PRODUCTION
# Staff single sign-on with OpenID Connect, configured from the environment (off while OIDC_ISSUER is empty).
OIDC_ISSUER = os.getenv("OIDC_ISSUER", "").strip().rstrip("/")
OIDC_NAME = os.getenv("OIDC_NAME", "your company").strip()
OIDC_ROLE_CLAIM = os.getenv("OIDC_ROLE_CLAIM", "groups").strip()
OIDC_SUPPORT_GROUPS = envlist("OIDC_SUPPORT_GROUPS", "")
OIDC_MANAGER_GROUPS = envlist("OIDC_MANAGER_GROUPS", "")
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": []}}
if OIDC_ISSUER:
    SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"].append(
        {
            "provider_id": "sso",
            "name": OIDC_NAME,
            "client_id": os.getenv("OIDC_CLIENT_ID", ""),
            "secret": os.getenv("OIDC_CLIENT_SECRET", ""),
            "settings": {"server_url": OIDC_ISSUER, "oauth_pkce_enabled": True},
        }
    )
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_LOGIN_ON_GET = False  # the button POSTs (CSRF), a link cannot start a sign-in
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_STORE_TOKENS = False
# An existing local account is reached by email only when the provider says the address is verified.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_QUERY_EMAIL = True

# Operations (issue 26): Prometheus metrics at /metrics (django-prometheus's request metrics around every
# other middleware, the portal's hokusai_* in hokusai_portal/metrics.py), the audit trail.
INSTALLED_APPS += ["django_prometheus", "auditlog", "operations"]
MIDDLEWARE = [
    "hokusai_portal.tracing.TraceRequests",  # OpenTelemetry's server span (only with OTEL_EXPORTER_OTLP_ENDPOINT)
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    *MIDDLEWARE,
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# The ids every log line of a request carries (after the session and user are known).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "hokusai_portal.logs.RequestContext",
)
# The audit trail (operations/audit.py, django-auditlog): who changed what, from where; secrets fingerprinted.
MIDDLEWARE.insert(MIDDLEWARE.index("hokusai_portal.logs.RequestContext") + 1, "operations.audit.AuditMiddleware")
AUDITLOG_MASK_CALLABLE = "operations.audit.mask"
AUDITLOG_CID_GETTER = "operations.audit.correlation_id"
# The bearer token Prometheus scrapes /metrics with; empty: /metrics does not exist (404).
METRICS_TOKEN = os.getenv("METRICS_TOKEN", "").strip()

# Error reports (issue 26): SENTRY_DSN turns on sentry-sdk (Django, Celery) in every process that loads these
# settings; keys, tokens, cookies, passwords and report notes are scrubbed before an event leaves
# (hokusai_portal/error_reports.py). Empty: off, sentry_sdk not even imported.
SENTRY_DSN = os.getenv("SENTRY_DSN", "").strip()
if SENTRY_DSN and not re.fullmatch(r"https?://[^@/\s]+@[^/\s]+/\S+", SENTRY_DSN):
    raise ImproperlyConfigured("SENTRY_DSN must be a Sentry DSN (https://<public key>@<host>/<project id>)")
SENTRY_ENVIRONMENT = os.getenv("SENTRY_ENVIRONMENT", "").strip() or PORTAL_ENV
try:
    SENTRY_TRACES_SAMPLE_RATE = float(os.getenv("SENTRY_TRACES_SAMPLE_RATE", "0").strip() or "0")
except ValueError:
    SENTRY_TRACES_SAMPLE_RATE = -1.0
if not 0 <= SENTRY_TRACES_SAMPLE_RATE <= 1:
    raise ImproperlyConfigured(
        f"SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1, not {os.getenv('SENTRY_TRACES_SAMPLE_RATE')!r}"
    )
if SENTRY_DSN:
    from hokusai_portal import error_reports

    error_reports.setup(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
        role=os.getenv("PORTAL_PROCESS", "").strip(),
    )
