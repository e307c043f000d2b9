"""Haven settings: one file, read from the environment.

With nothing set, Haven runs embedded (SQLite under var/, a file-system Celery broker),
which is what `make demo` uses. Set DATABASE_URL and REDIS_URL to run on PostgreSQL and
Redis, as CI and production do. See the configuration table in README.md.
"""

from pathlib import Path

import dj_database_url

from hosting.env import ConfigError, env_bool, env_fernet_keys, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / env_str("HAVEN_VAR_DIR", "var")  # relative to the checkout unless absolute
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ConfigError("SECRET_KEY must be set when DEBUG is off (export SECRET_KEY=<50+ random characters>)")
    SECRET_KEY = "django-insecure-haven-development-only"  # noqa: S105 - DEBUG only, never served

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_countries",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",  # authenticator apps (two-factor, optional per user)
    "django_otp.plugins.otp_static",  # one-time recovery codes
    "auditlog",
    "changelog",
    "capacity",
    "hosting",
    "hosting.telemetry",
    "hosting.billing",
    "hosting.curtailment",
    "hosting.webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "hosting.middleware.RejectNulBytes",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The change log: one request id and the session user for every change the request makes.
    "changelog.middleware.RequestChanges",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it answers locked-out logins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hosting.urls"
WSGI_APPLICATION = "hosting.wsgi.application"
ASGI_APPLICATION = "hosting.asgi.application"

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
                "hosting.portal.context.account",  # the portal header's tenants and roles
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'haven.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE: a writer takes SQLite's write lock when its transaction starts, so
    # two bookings serialise instead of both reading stale headroom (SQLite ignores
    # SELECT ... FOR UPDATE). PostgreSQL gets real row locks in capacity.ledger.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so that a test's Celery worker process sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-haven.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Change log (django-auditlog; docs/changes.md) -------------------------------------
# Every save and delete of these models is recorded with before/after, the actor and the
# request or task id; their bulk writes go through changelog.record. Telemetry windows,
# samples and machine-days are not recorded (volume), nor the ledger's cache versions.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {"model": "capacity.Site", "exclude_fields": ["ledger_version", "floor_version"]},
    "capacity.EnergizationPhase",
    "capacity.PowerFeed",
    {"model": "capacity.Pdu", "mask_fields": ["community"]},
    "capacity.Circuit",
    "capacity.Rack",
    "capacity.Slot",
    "capacity.Reservation",
    "hosting.Contract",
    {"model": "hosting.Machine", "exclude_fields": ["status_changed_at"]},
    "hosting.CommissioningPolicy",
    "hosting.SitePricing",
    "hosting.TermDiscount",
    "billing.ContractTerms",
    "billing.FlatFee",
    "billing.SiteBilling",
    "billing.Levy",
    {
        "model": "billing.Invoice",  # its states, not the figures a draft is refilled with
        "include_fields": ["status", "number", "issued_at", "due_on", "paid_at", "voided_at", "reason"],
    },
    "curtailment.Event",
    "hosting.Membership",  # who acts for a tenant, in which role: added, re-roled, removed
    {"model": "hosting.Invitation", "exclude_fields": ["digest"]},  # the link's token digest never
    # A subscription's URL, events and state; never its signing secret, nor the failure counter
    # every failed delivery bumps (its effect, being disabled, is recorded).
    {"model": "webhooks.Subscription", "exclude_fields": ["secret", "consecutive_failures"]},
)
AUDITLOG_STORE_JSON_CHANGES = True  # before/after keep their JSON types (null, numbers, booleans)
AUDITLOG_CID_GETTER = "changelog.context.get_cid"  # one id per request or task (changelog.context)
AUDITLOG_DISABLE_REMOTE_ADDR = False

# --- Celery -------------------------------------------------------------------------
# REDIS_URL unset: kombu's file-system transport, a broker that needs no server.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL is not None:
    CELERY_BROKER_URL = env_url("REDIS_URL", REDIS_URL, schemes=("redis", "rediss"))
    # Unacknowledged messages come back after this long: longer than any task runs.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT_S", 3600)}
else:
    _broker_dir = VAR_DIR / "celery" / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
# Results live in rows written by the tasks themselves, never only in a result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False

CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Holds expire without an event; this also catches a promotion whose trigger was lost.
    "promote-waitlist": {"task": "hosting.promote_waitlist", "schedule": 15 * 60},
    # Commissioning's outbox and watchdog: pending runs are sent, orphaned ones handed out again.
    "sweep-commissioning": {"task": "hosting.sweep_commissioning", "schedule": 60},
    # Alerts opened or resolved since the last digest, one e-mail per recipient.
    "send-alert-digests": {
        "task": "telemetry.send_alert_digests",
        "schedule": env_int("ALERT_DIGEST_S", 15 * 60, minimum=1),
    },
    # Telemetry: each site's poll opens as its interval begins (TelemetryPolicy.poll_interval_s).
    "telemetry-schedule-polls": {
        "task": "telemetry.schedule_polls",
        "schedule": env_int("TELEMETRY_SCHEDULE_S", 5, minimum=1),
    },
}
# Telemetry storage upkeep (hosting/telemetry/tasks_store.py), central and idempotent.
CELERY_BEAT_SCHEDULE |= {
    # Unknown windows where no poll answered, once an interval's grace has passed.
    "telemetry-account": {"task": "telemetry.account", "schedule": 60},
    # Machine-hours, contract- and circuit-days, as far as accounting has closed.
    "telemetry-roll-up": {"task": "telemetry.roll_up", "schedule": 5 * 60},
    # Day partitions ahead; raw windows past retention dropped as whole partitions.
    "telemetry-maintain-partitions": {"task": "telemetry.maintain_partitions", "schedule": 60 * 60},
}
# Billing (hosting/billing/tasks.py): machine-days as telemetry closes each local day, the
# monthly invoices on each contract's billing day, overdue reminders. Each is idempotent.
CELERY_BEAT_SCHEDULE |= {
    "billing-roll-up": {"task": "billing.roll_up", "schedule": 30 * 60},
    "billing-run": {"task": "billing.run_invoices", "schedule": 60 * 60},
    "billing-overdue": {"task": "billing.mark_overdue", "schedule": 6 * 60 * 60},
}
# Curtailment (hosting/curtailment/tasks.py): each active event verified by its outlets' watts.
CURTAILMENT_VERIFY_S = env_int("CURTAILMENT_VERIFY_S", 30, minimum=1)
CELERY_BEAT_SCHEDULE |= {
    "curtailment-check-events": {"task": "curtailment.check_events", "schedule": CURTAILMENT_VERIFY_S},
}
# Curtailment signals (hosting/curtailment/tasks_signals.py): price and 4CP programs opened
# or ended every minute; real-time prices fetched with gridstatus where a site allows it.
CELERY_BEAT_SCHEDULE |= {
    "curtailment-evaluate-programs": {"task": "curtailment.evaluate_programs", "schedule": 60},
    "curtailment-fetch-prices": {"task": "curtailment.fetch_prices", "schedule": 5 * 60},
}
# Webhooks (hosting/webhooks/tasks.py): deliveries due (retries, what a dead broker or worker
# left), and holds about to expire announced once.
WEBHOOKS_SWEEP_S = env_int("WEBHOOKS_SWEEP_S", 60, minimum=1)
CELERY_BEAT_SCHEDULE |= {
    "webhooks-sweep": {"task": "webhooks.sweep", "schedule": WEBHOOKS_SWEEP_S},
    "webhooks-expiring-holds": {"task": "webhooks.announce_expiring_holds", "schedule": 5 * 60},
    "webhooks-prune": {"task": "webhooks.prune", "schedule": 60 * 60},
}
# Deliveries have a queue of their own: a slow receiver never holds up the central tasks.
CELERY_TASK_ROUTES = {"webhooks.deliver": {"queue": env_str("WEBHOOKS_QUEUE", "webhooks")}}
# Tasks without a queue of their own (the site's) go to the central default queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"

# --- Commissioning --------------------------------------------------------------------
# A running self-test whose heartbeat is older than this is taken to have lost its worker.
COMMISSIONING_STALE_AFTER_S = env_int("COMMISSIONING_STALE_AFTER_S", 180, minimum=2)
COMMISSIONING_HEARTBEAT_S = max(1, COMMISSIONING_STALE_AFTER_S // 4)
COMMISSIONING_CHUNK = env_int("COMMISSIONING_CHUNK", 50, minimum=1)  # runs per task message
COMMISSIONING_CONCURRENCY = env_int("COMMISSIONING_CONCURRENCY", 64, minimum=1)  # miners at once per process
# How long a request may wait on the broker to publish its runs (one attempt, no retries):
# when it is down the runs wait in the runs table and the sweep sends them.
COMMISSIONING_PUBLISH_TIMEOUT_MS = env_int("COMMISSIONING_PUBLISH_TIMEOUT_MS", 500, minimum=10)

# --- Billing --------------------------------------------------------------------------
# The monthly run issues its invoices at once; off, they wait as drafts for staff to issue.
BILLING_AUTO_ISSUE = env_bool("BILLING_AUTO_ISSUE", True)
BILLING_REMINDER_DAYS = env_int("BILLING_REMINDER_DAYS", 7, minimum=1)  # between reminders of an overdue invoice
BILLING_REMINDERS = env_int("BILLING_REMINDERS", 3, minimum=0)  # at most, per invoice

# --- Webhooks -------------------------------------------------------------------------
# Never deliver to loopback, private, link-local, reserved addresses (server-side request
# forgery) unless this is on: on with DEBUG (the demo) and in the tests, off in production.
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", DEBUG)
WEBHOOKS_QUEUE = env_str("WEBHOOKS_QUEUE", "webhooks")  # deliveries: a central worker runs -Q webhooks
WEBHOOKS_TIMEOUT_S = env_int("WEBHOOKS_TIMEOUT_S", 5, minimum=1)  # connect, send, each read
# Retries: base × 2^(n-1) capped, less up to 25 % jitter; given up after WEBHOOKS_ATTEMPTS
# tries (60 s, 3 h, 16: about a day).
WEBHOOKS_BACKOFF_BASE_S = env_int("WEBHOOKS_BACKOFF_BASE_S", 60, minimum=1)
WEBHOOKS_BACKOFF_CAP_S = env_int("WEBHOOKS_BACKOFF_CAP_S", 3 * 3600, minimum=1)
WEBHOOKS_ATTEMPTS = env_int("WEBHOOKS_ATTEMPTS", 16, minimum=1)
# A subscription is disabled after this many deliveries in a row were given up on.
WEBHOOKS_DISABLE_AFTER = env_int("WEBHOOKS_DISABLE_AFTER", 5, minimum=1)
WEBHOOKS_HOLD_NOTICE_HOURS = env_int("WEBHOOKS_HOLD_NOTICE_HOURS", 24, minimum=1)  # hold.expiring this far ahead
WEBHOOKS_PUBLISH_TIMEOUT_MS = env_int("WEBHOOKS_PUBLISH_TIMEOUT_MS", 500, minimum=10)
WEBHOOKS_KEEP_DAYS = env_int("WEBHOOKS_KEEP_DAYS", 30, minimum=1)  # events and their delivery log kept this long
# Subscriptions' signing secrets are sealed at rest (hosting/webhooks/sealing.py): the first key
# seals, every key unseals (rotation: put the new key first, keep the old until re-sealed).
# Unset: one key derived from SECRET_KEY — rotating SECRET_KEY then needs the old one's derived
# key listed here (`manage.py shell -c "from hosting.webhooks import sealing; print(sealing.derived_key())"`).
WEBHOOKS_SEALING_KEYS = env_fernet_keys("WEBHOOKS_SEALING_KEYS")

# --- Curtailment ----------------------------------------------------------------------
# Sized for the site's control worker at four processes per core (README, docs/performance.md).
CURTAILMENT_CHUNK = env_int("CURTAILMENT_CHUNK", 250, minimum=1)  # machines per command message
CURTAILMENT_CONCURRENCY = env_int("CURTAILMENT_CONCURRENCY", 30, minimum=1)  # miners told at once per process
CURTAILMENT_TIMEOUT_S = env_int("CURTAILMENT_TIMEOUT_S", 5, minimum=1)  # each command, each PDU read
CURTAILMENT_ATTEMPTS = env_int("CURTAILMENT_ATTEMPTS", 3, minimum=1)  # tries of one command (backoff between)
CURTAILMENT_BACKOFF_MS = env_int("CURTAILMENT_BACKOFF_MS", 500, minimum=0)
# Machines still drawing after the deadline are told to stop again this many times at most.
CURTAILMENT_RETRIES = env_int("CURTAILMENT_RETRIES", 2, minimum=0)
# Verified off: the outlet draws no more than the model's sleep draw (or its power limit) + this.
CURTAILMENT_VERIFY_MARGIN_W = env_int("CURTAILMENT_VERIFY_MARGIN_W", 100, minimum=0)
# A chunk's outlets are read this long after its commands went (the miners spin down).
CURTAILMENT_SETTLE_MS = env_int("CURTAILMENT_SETTLE_MS", 2000, minimum=0)
# Two machines of one circuit are told at least this far apart (no circuit steps at once).
CURTAILMENT_CIRCUIT_GAP_MS = env_int("CURTAILMENT_CIRCUIT_GAP_MS", 100, minimum=0)
# A machine's draw and J/TH are averaged over its measured windows of this long before the event.
CURTAILMENT_MEASURE_S = env_int("CURTAILMENT_MEASURE_S", 3600, minimum=60)
CURTAILMENT_PUBLISH_TIMEOUT_MS = env_int("CURTAILMENT_PUBLISH_TIMEOUT_MS", 500, minimum=10)

# --- Telemetry ------------------------------------------------------------------------
TELEMETRY_CHUNK = env_int("TELEMETRY_CHUNK", 500, minimum=1)  # machines per task message (whole PDUs)
TELEMETRY_CONCURRENCY = env_int("TELEMETRY_CONCURRENCY", 100, minimum=1)  # miners read at once per process
TELEMETRY_TIMEOUT_S = env_int("TELEMETRY_TIMEOUT_S", 5, minimum=1)  # each read of a miner or a PDU
# The share of an interval over which a site's reads are spread (chunks start one after another).
TELEMETRY_SPREAD_PCT = env_int("TELEMETRY_SPREAD_PCT", 50, minimum=0)
# How long the scheduler may wait on the broker to send a poll's chunks (one attempt, no retries).
TELEMETRY_PUBLISH_TIMEOUT_MS = env_int("TELEMETRY_PUBLISH_TIMEOUT_MS", 500, minimum=10)
# The poll interval the demo seed gives its sites, so that charts fill in within minutes.
TELEMETRY_DEMO_INTERVAL_S = env_int("TELEMETRY_DEMO_INTERVAL_S", 15, minimum=1)

# --- Telemetry storage ------------------------------------------------------------------
# Raw 5-minute windows are kept this many whole days before today (rollups: for years).
TELEMETRY_RAW_DAYS = env_int("TELEMETRY_RAW_DAYS", 14, minimum=1)
# Day partitions are created this many days ahead (PostgreSQL).
TELEMETRY_PARTITIONS_AHEAD_DAYS = env_int("TELEMETRY_PARTITIONS_AHEAD_DAYS", 3, minimum=1)
# An interval no poll answered this long after it ended is written down as unknown.
TELEMETRY_UNKNOWN_GRACE_S = env_int("TELEMETRY_UNKNOWN_GRACE_S", 60, minimum=0)

# --- Cache (API throttling counters) ------------------------------------------------------
if REDIS_URL is not None:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hosting.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "hosting.api.parsers.JSONParser",  # refuses absurd nesting before Python's decoder recurses
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "hosting.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "hosting.api.throttles.AnonRateThrottle",
        "hosting.api.throttles.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON", "300/min"),
        "user": env_str("THROTTLE_USER", "3000/min"),
        # Quote requests cost a planning run: per client IP, raised for a token holder.
        "quote_anon": env_str("THROTTLE_QUOTE_ANON", "20/hour"),
        "quote_token": env_str("THROTTLE_QUOTE_TOKEN", "1000/hour"),
    },
    # Client IP for throttling: REMOTE_ADDR unless N proxies in front add X-Forwarded-For.
    "NUM_PROXIES": env_int("TRUSTED_PROXIES", 0, minimum=0),
    "EXCEPTION_HANDLER": "hosting.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "hosting.api.schema.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Haven API",
    "DESCRIPTION": "Capacity, quotes and machines of Bitcoin-mining hosting sites.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The docs work without internet: Swagger UI from drf-spectacular-sidecar (pinned), and
    # no "valid" badge fetched from swagger.io.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- Quotes and holds -----------------------------------------------------------------
QUOTE_VALID_HOURS = env_int("QUOTE_VALID_HOURS", 7 * 24, minimum=1)
HOLD_HOURS = env_int("HOLD_HOURS", 72, minimum=1)
PLANNING_HORIZON_MONTHS = env_int("PLANNING_HORIZON_MONTHS", 36, minimum=1)
# Nameplate watts assumed per slot when a quote asks for kW rather than machines.
REFERENCE_MACHINE_W = env_int("REFERENCE_MACHINE_W", 3250, minimum=1)

# --- E-mail ---------------------------------------------------------------------------
# SMTP when EMAIL_HOST is set; files under EMAIL_FILE_PATH (one per message) if that is
# set; otherwise the console (the demo prints what it would send).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
elif EMAIL_FILE_PATH:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Haven <noreply@haven.example>")
# Staff addresses the alert digest goes to (comma-separated); tenants get theirs at contact_email.
ALERT_EMAILS = env_list("ALERT_EMAILS", [])
# A tenant's invitation link works for this many days (once).
INVITATION_DAYS = env_int("INVITATION_DAYS", 7, minimum=1)

# --- Auth, i18n, static -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "portal:login"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out logins before checking passwords
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (portal and admin): 5 failures for a username from an address lock it for
# an hour; a success resets the count.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 60, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
# Two-factor (django-otp): the issuer authenticator apps show; each bad code doubles the wait
# before the next is checked (django-otp's throttling), and counts as a failed login for axes.
OTP_TOTP_ISSUER = env_str("OTP_ISSUER", "Haven")
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXIES", 0, minimum=0)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Production serves what `manage.py collectstatic` gathered (hashed names, compressed);
# DEBUG serves straight from the apps' folders.
WHITENOISE_USE_FINDERS = DEBUG

# --- Security -----------------------------------------------------------------------
# HTTPS defaults to on whenever DEBUG is off; a deployment behind a TLS-terminating proxy
# sets SECURE_PROXY_SSL_HEADER through TRUST_X_FORWARDED_PROTO.
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Telemetry: who may scrape /metrics without a staff token -------------------------
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1"])

# --- Logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # pyasic's HTTP client logs every request to a miner at INFO: thousands a minute.
    "loggers": {"httpx": {"level": "WARNING"}},
}
