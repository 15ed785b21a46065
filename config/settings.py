"""RankForge settings: one module, driven by environment variables.

No variables set means the embedded default: SQLite (WAL) and Celery over kombu's SQLAlchemy
transport on its own SQLite file, both under ``VAR_DIR``. Production sets ``DATABASE_URL``
(PostgreSQL), ``CELERY_BROKER_URL`` (Redis), ``SECRET_KEY`` and ``ARTIFACT_ROOT``.
"""

import ipaddress
import os
import secrets
import time
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


VAR_DIR = Path(os.environ.get("RANKFORGE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG")
# The address the web server listens on: ./dev run and platform/Procfile pass the same variable to
# gunicorn (the image sets 0.0.0.0). Only a loopback-bound embedded default may run without a SECRET_KEY.
BIND_ADDRESS = (os.environ.get("BIND_ADDRESS") or "127.0.0.1").strip()


def is_loopback(address: str) -> bool:
    host = address.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("RANKFORGE_EMBEDDED", default="DATABASE_URL" not in os.environ):
        raise ImproperlyConfigured("SECRET_KEY must be set unless DEBUG is on.")
    if not DEBUG and not is_loopback(BIND_ADDRESS):
        raise ImproperlyConfigured(
            f"SECRET_KEY must be set: the server is bound to {BIND_ADDRESS!r} (BIND_ADDRESS), not to loopback. "
            "Without SECRET_KEY the embedded default only serves 127.0.0.1, localhost or ::1."
        )
    # Embedded/DEBUG only: a random key kept under VAR_DIR (shared by the web and worker processes),
    # so nobody can derive it from the checkout path and forge sessions.
    key_file = VAR_DIR / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50))
    SECRET_KEY = key_file.read_text().strip()
    if not SECRET_KEY:  # another process created the file and is writing it right now
        time.sleep(0.5)
        SECRET_KEY = key_file.read_text().strip()

# Secure cookies and HSTS when the site is served over HTTPS. On by default for a deployment
# (DEBUG off and DATABASE_URL set); off for the embedded default, which serves plain http on
# loopback -- a Secure cookie is never sent back over plain http, so sign-in would break there.
RANKFORGE_HTTPS = env_bool("RANKFORGE_HTTPS", default=not DEBUG and "DATABASE_URL" in os.environ)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = RANKFORGE_HTTPS
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the UI reads the csrftoken cookie to send X-CSRFToken
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if RANKFORGE_HTTPS:
    SECURE_HSTS_SECONDS = env_int("RANKFORGE_HSTS_SECONDS", 3600)
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto (never set this without one, or a
# client could claim https), and take the client address for throttling from X-Forwarded-For,
# RANKFORGE_NUM_PROXIES hops from the right. Without a proxy the address is REMOTE_ADDR only.
RANKFORGE_BEHIND_PROXY = env_bool("RANKFORGE_BEHIND_PROXY")
if RANKFORGE_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
RANKFORGE_NUM_PROXIES = env_int("RANKFORGE_NUM_PROXIES", 1 if RANKFORGE_BEHIND_PROXY else 0)

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
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
    "labeling",
    "training",
    "models_registry",
]

MIDDLEWARE = [
    "common.uploads.UploadLimitMiddleware",  # first: refuses an oversized body before anything reads it
    "django.middleware.security.SecurityMiddleware",
    "common.api.NulCharacterMiddleware",  # ?name=%00 is a 400, not a PostgreSQL DataError (500)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"), conn_max_age=env_int("DB_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL is switched on by labeling.apps on connection; IMMEDIATE serializes writers up front
    # instead of failing on a lock upgrade mid-transaction.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side binding lets psycopg prepare the statements a connection repeats (the labeling hot
    # path), so PostgreSQL stops re-planning them. Behind a transaction-pooling PgBouncer, set
    # DB_PREPARE_THRESHOLD=off.
    threshold = os.environ.get("DB_PREPARE_THRESHOLD", "5")
    if threshold.lower() not in ("off", "none", ""):
        DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": int(threshold)}
    # A persistent connection that a database restart dropped is replaced before a request uses it
    # (instead of a 500 "terminating connection due to administrator command"); an unreachable
    # server fails a connect in seconds, not after the kernel's TCP timeout. The check polls the
    # socket instead of sending SELECT 1 (common/postgresql).
    DATABASES["default"]["ENGINE"] = "common.postgresql"
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT_S", 10)
    # A frozen process (paused, swapping, cut off) must not hold row locks for ever: PostgreSQL ends
    # a session left idle inside a transaction after this long (0: never).
    if idle_in_transaction_s := env_int("DB_IDLE_IN_TRANSACTION_TIMEOUT_S", 300):
        DATABASES["default"]["OPTIONS"]["options"] = (
            f"-c idle_in_transaction_session_timeout={idle_in_transaction_s * 1000}"
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every password set through the API goes through these (labeling.services.accounts).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Shared by every web worker (throttle counts): Redis when there is one (REDIS_URL, else a redis
# CELERY_BROKER_URL; keys are prefixed, so sharing the broker's database is safe), else files under
# VAR_DIR. Neither needs a setup step such as createcachetable.
_cache_redis = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL") or ""
if _cache_redis.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_redis,
            "KEY_PREFIX": "rankforge-cache",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [p for p in [BASE_DIR / "frontend" / "dist"] if p.is_dir()]

ARTIFACT_ROOT = Path(os.environ.get("ARTIFACT_ROOT", VAR_DIR / "artifacts"))

# The artifact store (common/storage.py): registry versions (models/...), preference snapshots
# (snapshots/...) and runs' finished files (runs/...) on local disk under ARTIFACT_ROOT (default), or
# ARTIFACT_STORAGE=s3: a bucket through django-storages' S3Storage, the "artifacts" storage below
# (common/storage_s3.py). ARTIFACT_ROOT still holds staging folders, the folders runs work in
# (runs/<id>/ on the worker) and the download cache (cache/...).
# Credentials: boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an IAM role).
ARTIFACT_STORAGE = (os.environ.get("ARTIFACT_STORAGE") or "local").strip().lower()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if ARTIFACT_STORAGE == "s3":
    if not os.environ.get("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("ARTIFACT_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME (the bucket for model versions).")
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,  # MinIO, Ceph, R2, ...
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,  # "path" for most S3 clones
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
elif ARTIFACT_STORAGE != "local":
    raise ImproperlyConfigured(f"ARTIFACT_STORAGE must be 'local' or 's3', not {ARTIFACT_STORAGE!r}.")

# Uploads are streamed to disk past this size; the hard limit is enforced by the import services.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
RANKFORGE_MAX_UPLOAD_BYTES = env_int("RANKFORGE_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
# The limit holds before anything is spooled: common.uploads checks Content-Length up front (its
# middleware) and counts file bytes as they stream in (this handler, ahead of Django's own).
FILE_UPLOAD_HANDLERS = [
    "common.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Sign-in attempts (token, session, password change) per client address and username, and per
# address over all usernames; "N/second|minute|hour|day", or "off". See common/throttling.py.
RANKFORGE_THROTTLE_RATES = {
    scope: (None if rate.strip().lower() == "off" else rate.strip())
    for scope, rate in {
        "login": os.environ.get("RANKFORGE_THROTTLE_LOGIN") or "10/minute",
        "login_ip": os.environ.get("RANKFORGE_THROTTLE_LOGIN_IP") or "60/minute",
    }.items()
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.authentication.LeanTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "common.api.Pagination",  # max_limit: ?limit= is clamped to 500
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "common.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Client address for throttles: REMOTE_ADDR, or X-Forwarded-For behind RANKFORGE_NUM_PROXIES proxies.
    # (DRF's default, None, trusts a client-sent X-Forwarded-For, so each guess could claim a new address.)
    "NUM_PROXIES": RANKFORGE_NUM_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "RankForge API",
    "DESCRIPTION": "Collect human rankings of model completions and turn them into aligned models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "LabelSourceEnum": "labeling.models.LabelSource",
        "RunKindEnum": "training.models.RunKind",
        "RunStateEnum": "training.models.RunState",
        "SweepStateEnum": "training.models.SweepState",
        "RunEventTypeEnum": "training.models.RunEventType",
        "FormatEnum": "models_registry.models.ArtifactFormat",
        "ImportFormatEnum": "labeling.external_formats.FORMATS",
    },
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN: docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Error responses and OpenAPI links, derived from the generated paths (common/openapi.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "common.openapi.postprocess"],
}

# Celery: embedded default is kombu's SQLAlchemy transport on its own SQLite file (the filesystem
# transport loses messages under concurrency).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 48 * 3600)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Above the longest run, so Redis never redelivers a message that is still being worked on.
    # (The SQLAlchemy transport passes these options to create_engine, which refuses them.)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
# Training runs: heartbeat, cancel polling and the sweep that fails runs of dead workers (DESIGN.md,
# Jobs and workers). Tests shrink these to seconds.
RANKFORGE_RUN_HEARTBEAT_S = float(os.environ.get("RANKFORGE_RUN_HEARTBEAT_S") or 10)
RANKFORGE_RUN_POLL_S = float(os.environ.get("RANKFORGE_RUN_POLL_S") or 2)
RANKFORGE_RUN_KILL_GRACE_S = float(os.environ.get("RANKFORGE_RUN_KILL_GRACE_S") or 30)
RANKFORGE_RUN_STALE_AFTER_S = float(os.environ.get("RANKFORGE_RUN_STALE_AFTER_S") or 120)
# How long a supervisor keeps its run going (and its events in memory) while the database is out of
# reach; past this it stops the run. The sweep does not count a database restart against a run.
RANKFORGE_RUN_DB_OUTAGE_S = float(os.environ.get("RANKFORGE_RUN_DB_OUTAGE_S") or 600)
RANKFORGE_RUN_REQUEUE_AFTER_S = float(os.environ.get("RANKFORGE_RUN_REQUEUE_AFTER_S") or 300)
RANKFORGE_RUN_SWEEP_INTERVAL_S = float(os.environ.get("RANKFORGE_RUN_SWEEP_INTERVAL_S") or 30)
# A run whose worker was lost is requeued to resume (from its last checkpoint) this many times, then failed.
RANKFORGE_RUN_MAX_RESUMES = env_int("RANKFORGE_RUN_MAX_RESUMES", 1)
# GPUs a worker process owns: above 1, training kinds run under `accelerate launch` (one process per GPU).
RANKFORGE_RUN_GPUS = env_int("RANKFORGE_RUN_GPUS", 1)
RANKFORGE_RUN_MAX_LOG_LINES = env_int("RANKFORGE_RUN_MAX_LOG_LINES", 20_000)
RANKFORGE_RUN_MAX_LINE_CHARS = env_int("RANKFORGE_RUN_MAX_LINE_CHARS", 4_000)
# torch/OMP threads of a run unless its config says; 0: the cores the worker owns (supervision.cores_owned)
RANKFORGE_RUN_THREADS = env_int("RANKFORGE_RUN_THREADS", 0)
# Environment variables a run's process may see beyond training.supervision's allow-list: NAME,PREFIX*,...
RANKFORGE_RUN_ENV_ALLOW = os.environ.get("RANKFORGE_RUN_ENV_ALLOW", "")
if RANKFORGE_RUN_STALE_AFTER_S <= 2 * RANKFORGE_RUN_HEARTBEAT_S:
    raise ImproperlyConfigured("RANKFORGE_RUN_STALE_AFTER_S must exceed twice RANKFORGE_RUN_HEARTBEAT_S.")
# Hyperparameter sweeps (training.services.sweeps): the most trials one sweep may ask for, and run at once;
# beat advances every running sweep this often (a trial's end also advances its sweep at once).
RANKFORGE_SWEEP_MAX_TRIALS = env_int("RANKFORGE_SWEEP_MAX_TRIALS", 100)
RANKFORGE_SWEEP_MAX_PARALLELISM = env_int("RANKFORGE_SWEEP_MAX_PARALLELISM", 16)
RANKFORGE_SWEEP_ADVANCE_INTERVAL_S = float(os.environ.get("RANKFORGE_SWEEP_ADVANCE_INTERVAL_S") or 15)
CELERY_TASK_ROUTES = {
    "training.run_execute": {"queue": "gpu"},
    "training.sweep_runs": {"queue": "default"},
    "training.advance_sweep": {"queue": "default"},
    "training.advance_sweeps": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE = {
    "sweep-snapshots": {"task": "labeling.sweep_snapshots", "schedule": 60.0, "options": {"queue": "default"}},
    "sweep-runs": {
        "task": "training.sweep_runs",
        "schedule": RANKFORGE_RUN_SWEEP_INTERVAL_S,
        "options": {"queue": "default"},
    },
    "advance-sweeps": {
        "task": "training.advance_sweeps",
        "schedule": RANKFORGE_SWEEP_ADVANCE_INTERVAL_S,
        "options": {"queue": "default"},
    },
}
RANKFORGE_SNAPSHOT_REQUEUE_AFTER_S = env_int("RANKFORGE_SNAPSHOT_REQUEUE_AFTER_S", 120)
RANKFORGE_SNAPSHOT_STALE_AFTER_S = env_int("RANKFORGE_SNAPSHOT_STALE_AFTER_S", 3600)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
