"""Settings, read once from the environment through django-environ.

With no environment set, everything runs on one machine: a SQLite file database, Celery tasks
run eagerly in the calling process, email goes to the console and Stripe keys are dummies of the
right shape. Production sets the variables listed in the README's table.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def env_decimal(name: str, default: str) -> Decimal:
    """A non-negative Decimal from the environment (never a float)."""
    raw = env.str(name, default=default)
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise environ.ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise environ.ImproperlyConfigured(f"{name} must be a number >= 0, not {raw!r}")
    return value


DEBUG = env.bool("DEBUG", default=False)
# Sessions, password reset links and CSRF tokens are signed with SECRET_KEY, so without DEBUG
# the process refuses to start without one: a key committed here would sign them for anyone.
# DEBUG=true (development) falls back to a key that `check --deploy` flags.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise environ.ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random value (for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`), or set DEBUG=true "
            "for development."
        )
    SECRET_KEY = "django-insecure-development-only-do-not-use-in-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# CORS for a frontend on another origin (django-cors-headers): off while the list is empty, and
# only for the API. No credentials: a separate frontend sends `Authorization: Token <key>`, so
# the browser never attaches our session cookie to another site's requests (no cross-site
# session, no CSRF exposure). Same-origin pages (/account/credits/) use the session as before.
CORS_ALLOWED_ORIGINS = [
    origin.strip() for origin in env.list("CORS_ALLOWED_ORIGINS", default=[]) if origin.strip()
]
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = False

INSTALLED_APPS = [
    "project.apps.CreditsAdminConfig",  # django.contrib.admin, with our site (ordering)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "djstripe",
    "django_celery_beat",
    "axes",
    "core.apps.CoreConfig",
    "credits",
    "billing",
    "migrations_app",
    "ops.apps.OpsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Oversized bodies (413) and NUL characters in the address (400), before anything reads them.
    "project.middleware.InputBoundsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: answers a locked-out login with its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Optional: the legacy billing tables in a second database (see project/routers.py).
if env.str("LEGACY_DATABASE_URL", default=""):
    DATABASES["legacy"] = env.db_url("LEGACY_DATABASE_URL")
    DATABASE_ROUTERS = ["project.routers.LegacyRouter"]
# Each request is its own unit of work through the services; no implicit request transaction.
for database in DATABASES.values():
    database["ATOMIC_REQUESTS"] = False
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of failing with
        # "database is locked" when one upgrades a read lock; a timeout lets them wait a turn.
        database.setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
    else:
        database["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        database["CONN_HEALTH_CHECKS"] = True
        # Django's own cursors bind on the client and never prepare; this only lets the
        # ledger's hot statement (credits.services) be prepared once per connection. Turn it
        # off behind a pooler that cannot keep prepared statements (PgBouncer before 1.21 in
        # transaction mode): the statement is then parsed on every call, and still correct.
        if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
            database.setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- The admin's door ---------------------------------------------------------------------
# django-axes first: a login locked out is refused before the password is checked.
AUTHENTICATION_BACKENDS = [
    "core.audit.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins of one username from one address before it is locked out, and for how long.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Our own audit log says what matters (core/audit.py); axes' start-up lines would go to
# every command's stderr.
AXES_VERBOSE = False
# A session ends after this long without a request (each request moves the expiry on).
SESSION_COOKIE_AGE = env.int("STAFF_SESSION_IDLE_MINUTES", default=30) * 60
SESSION_SAVE_EVERY_REQUEST = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The customer's login (Django's LoginView at /accounts/login/) lands on the balance page.
LOGIN_REDIRECT_URL = "account-credits"
# The site's own pages (project/pages.py) keep their CSS and script here.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security (production turns these on; see README) ------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# --- Email --------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="credits@localhost")

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Without a broker, tasks run in the calling process, so the embedded setup needs no worker.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if not CELERY_BROKER_URL:
    # Eager tasks still take a producer (for its serializer); with no URL Celery would make an
    # AMQP one and warn "No hostname was supplied". The in-process transport reaches nothing.
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Workers and producers of one deployment share a queue; tests give theirs a unique name.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Redis: a task taken by a worker that dies before acknowledging it (acks_late) goes back to
# the queue after this many seconds, for another worker. Longer than the longest task (one
# migration batch), or a slow task would be delivered twice (harmless, but wasted work).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # How often a worker looks for such messages (every look scans: throttle 1).
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=60),
    "unacked_restore_throttle": 1,
}
# Periodic tasks (the monthly grant) live in the database, so staff see and change them in the
# admin; a data migration creates the schedule. Run `celery -A project beat` next to the workers.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON with a nesting limit: a deeply nested body is a 400, never a RecursionError.
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Amounts leave as strings ("260.00"), never floats.
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Scoped throttles (views name their scope); counts live in the default cache.
    "DEFAULT_THROTTLE_RATES": {
        "spend": env.str("THROTTLE_RATE_SPEND", default="120/minute"),
        # Hold writes (create, capture, release): an operation is a hold and its capture.
        "holds": env.str("THROTTLE_RATE_HOLDS", default="240/minute"),
        "staff": env.str("THROTTLE_RATE_STAFF", default="300/minute"),
    },
}
# Throttle counts (and nothing else yet). Several web processes need a shared cache
# (e.g. redis://127.0.0.1:6379/2) for the rates to hold across them.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "Credit ledger API",
    "DESCRIPTION": (
        "The credit ledger, the migration from legacy billing and its monitoring. Every error "
        'answers {"error": {"code", "message", "details"}}; amounts are strings ("260.00").'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # One name per choice set, where two models' fields share a name ("kind", "status").
    "ENUM_NAME_OVERRIDES": {
        "EntryKindEnum": "credits.models.EntryKind",
        "ApprovalKindEnum": "credits.models.APPROVAL_KIND_CHOICES",
        "ApprovalStatusEnum": "credits.models.ApprovalStatus",
        "MigrationStatusEnum": "migrations_app.models.MigrationStatus",
        "HoldStatusEnum": "credits.models.HoldStatus",
        "LotCategoryEnum": "credits.models.LotCategory",
    },
    # Swagger UI's files come from drf-spectacular-sidecar, served by us: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.close_request_objects",
    ],
}

# --- Stripe (dj-stripe) -------------------------------------------------------------------
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
# dj-stripe needs keys of the right shape even offline; these dummies reach nothing.
STRIPE_TEST_SECRET_KEY = env.str("STRIPE_TEST_SECRET_KEY", default="sk_test_" + "0" * 24)
STRIPE_LIVE_SECRET_KEY = env.str("STRIPE_LIVE_SECRET_KEY", default="sk_live_" + "0" * 24)
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
# The Stripe API version every call uses, stripe-python's (set in billing's AppConfig.ready) and
# dj-stripe's (it reads this setting). dj-stripe 2.11's sync reads the shapes of 2024-06-20;
# newer ones (a discount's coupon under `source`, 2025-09-30 and later) break it.
STRIPE_API_VERSION = env.str("STRIPE_API_VERSION", default="2024-06-20")
# Where Stripe Checkout sends the buyer back (POST /api/credits/checkout/).
CREDITS_CHECKOUT_SUCCESS_URL = env.str(
    "CREDITS_CHECKOUT_SUCCESS_URL", default="http://127.0.0.1:8000/credits/thanks"
)
CREDITS_CHECKOUT_CANCEL_URL = env.str(
    "CREDITS_CHECKOUT_CANCEL_URL", default="http://127.0.0.1:8000/credits"
)
# Webhook secrets are not settings: each lives on its djstripe WebhookEndpoint row (see README).

# --- Credits ------------------------------------------------------------------------------
CREDITS_SIGNUP_GRANT = env_decimal("CREDITS_SIGNUP_GRANT", default="20")
CREDITS_RATE_USD = env_decimal("CREDITS_RATE_USD", default="1.0")
CREDITS_RATE_UAH = env_decimal("CREDITS_RATE_UAH", default="0.024")
CREDITS_MIGRATION_RATE_MAX = env_decimal("CREDITS_MIGRATION_RATE_MAX", default="1000")
CREDITS_ADMIN_LIMIT = env_decimal("CREDITS_ADMIN_LIMIT", default="1000")
CREDITS_ADMIN_DAILY_LIMIT = env_decimal("CREDITS_ADMIN_DAILY_LIMIT", default="5000")
# PostgreSQL: write each ledger entry in one prepared statement (credits.services.posting's
# fast path); off, PostgreSQL writes through the portable path SQLite uses.
CREDITS_POSTGRESQL_FAST_PATH = env.bool("CREDITS_POSTGRESQL_FAST_PATH", default=True)
# With the fast path: debits of one account that threads of a process write at the same moment
# go in one call and one commit (credits.services.posting.combining); off, each goes alone.
CREDITS_COMBINE_DEBITS = env.bool("CREDITS_COMBINE_DEBITS", default=True)
CREDITS_APPROVAL_THRESHOLD = env_decimal("CREDITS_APPROVAL_THRESHOLD", default="5000")

# Plans and their monthly credits (usage tiers, monthly grants). JSON: {"plan": credits, ...}.
CREDITS_PLANS = {
    name: Decimal(str(credits))
    for name, credits in env.json(
        "CREDITS_PLANS", default={"free": "20", "pro": "260", "business": "1000"}
    ).items()
}

# Plans whose users may buy credit packs; empty means every plan. A purchase from another plan
# is recorded as a StripeEventIssue for staff (the money was taken), not granted.
CREDITS_PURCHASE_PLANS = env.list("CREDITS_PURCHASE_PLANS", default=[]) or list(CREDITS_PLANS)
CREDITS_MONTHLY_GRANT_BATCH_SIZE = env.int("CREDITS_MONTHLY_GRANT_BATCH_SIZE", default=500)

# --- Credit lots and holds -----------------------------------------------------------------
# The category of the lot a crediting entry makes: "kind:source" first, then "kind"
# (JSON). Unlisted: promotional.
CREDITS_LOT_CATEGORIES = env.json(
    "CREDITS_LOT_CATEGORIES",
    default={
        "purchase": "paid",
        "grant": "promotional",
        "adjustment": "promotional",
        "monthly_grant": "monthly",
        "migration": "migration",
        "migration:usd_balance": "paid",
        "migration:usage_tiers": "monthly",
        "migration:rate_limit": "promotional",
    },
)
# The draw-down rule's first key: lower ranks are spent first (JSON {category: rank}); then
# soonest expiry (none last), then priority, then oldest.
CREDITS_DRAW_DOWN_RANKS = env.json(
    "CREDITS_DRAW_DOWN_RANKS",
    default={"promotional": 0, "monthly": 0, "migration": 1, "paid": 2},
)
# Credits of a monthly lot kept past its period (once, to the next period's end); 0: none.
CREDITS_MONTHLY_ROLLOVER_CAP = env_decimal("CREDITS_MONTHLY_ROLLOVER_CAP", default="0")
# Days after which rate_limit's initial (promotional) credits expire; unset: never.
CREDITS_RATE_LIMIT_EXPIRY_DAYS = env.int("CREDITS_RATE_LIMIT_EXPIRY_DAYS", default=None)
# Holds: the time to live when a request names none, and the longest allowed (seconds).
CREDITS_HOLD_DEFAULT_TTL = env.int("CREDITS_HOLD_DEFAULT_TTL", default=3600)
CREDITS_HOLD_MAX_TTL = env.int("CREDITS_HOLD_MAX_TTL", default=7 * 24 * 3600)

# --- The migration from legacy billing ----------------------------------------------------
# Sources run when --source is not given. user_fields and usd_balance move stored value;
# rate_limit and usage_tiers are alternatives for a legacy world of limits or tiers, and
# combined with user_fields they would grant twice, so they run only when asked for.
CREDITS_MIGRATION_SOURCES = env.list(
    "CREDITS_MIGRATION_SOURCES", default=["user_fields", "usd_balance"]
)
CREDITS_MIGRATION_BATCH_SIZE = env.int("CREDITS_MIGRATION_BATCH_SIZE", default=500)
CREDITS_MIGRATION_WORKERS = env.int("CREDITS_MIGRATION_WORKERS", default=2)
# Credits are quantized to 0.01 with this decimal rounding mode; the remainder is kept.
CREDITS_ROUNDING = env.str("CREDITS_ROUNDING", default="ROUND_HALF_EVEN")
CREDITS_RATE_LIMIT_BASE_GRANT = env_decimal("CREDITS_RATE_LIMIT_BASE_GRANT", default="20")
CREDITS_RATE_LIMIT_POWER_GRANT = env_decimal("CREDITS_RATE_LIMIT_POWER_GRANT", default="50")
CREDITS_RATE_LIMIT_POWER_OPS_PER_DAY = env_decimal(
    "CREDITS_RATE_LIMIT_POWER_OPS_PER_DAY", default="10"
)
CREDITS_RATE_LIMIT_WINDOW_DAYS = env.int("CREDITS_RATE_LIMIT_WINDOW_DAYS", default=30)
# A running migration run whose heartbeat (moved by every batch) is older than this many
# seconds is taken as dead: status and check_credits report it stuck, and a new execute run
# of its sources may start.
CREDITS_MIGRATION_STALE_AFTER = env.int("CREDITS_MIGRATION_STALE_AFTER", default=600)
# check_credits: more refused spends than this in the last hour need attention.
CREDITS_CHECK_FAILED_SPENDS_PER_HOUR = env.int("CREDITS_CHECK_FAILED_SPENDS_PER_HOUR", default=50)
CREDITS_MIGRATION_BACKUP_DIR = env.path(
    "CREDITS_MIGRATION_BACKUP_DIR", default=str(VAR_DIR / "migration-backups")
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Staff logins, failed logins and permission refusals (core/audit.py).
    "loggers": {"credits.audit": {"level": "INFO"}},
}
