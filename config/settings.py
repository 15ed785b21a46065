"""RankForge settings: one module, driven by environment variables.

No variables set means the embedded default: SQLite (WAL) and Celery over kombu's SQLAlchemy
transport on its own SQLite file, both under ``VAR_DIR``. Production sets ``DATABASE_URL``
(PostgreSQL), ``CELERY_BROKER_URL`` (Redis), ``SECRET_KEY`` and ``ARTIFACT_ROOT``.
"""

import os
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
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("RANKFORGE_EMBEDDED", default="DATABASE_URL" not in os.environ):
        raise ImproperlyConfigured("SECRET_KEY must be set unless DEBUG is on.")
    # Embedded/DEBUG only: a key that is stable for this checkout but never used in production.
    SECRET_KEY = "insecure-embedded-" + str(BASE_DIR)

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
    "django.middleware.security.SecurityMiddleware",
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [p for p in [BASE_DIR / "frontend" / "dist"] if p.is_dir()]

ARTIFACT_ROOT = Path(os.environ.get("ARTIFACT_ROOT", VAR_DIR / "artifacts"))

# Model-registry versions: local disk under ARTIFACT_ROOT (default), or ARTIFACT_STORAGE=s3: a bucket
# through django-storages' S3Storage, the "artifacts" storage below (models_registry/storage_s3.py).
# ARTIFACT_ROOT still holds staging folders, run folders and the download cache (cache/models/...).
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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.LeanTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
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
        "RunEventTypeEnum": "training.models.RunEventType",
    },
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN: docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
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
RANKFORGE_RUN_REQUEUE_AFTER_S = float(os.environ.get("RANKFORGE_RUN_REQUEUE_AFTER_S") or 300)
RANKFORGE_RUN_SWEEP_INTERVAL_S = float(os.environ.get("RANKFORGE_RUN_SWEEP_INTERVAL_S") or 30)
# A run whose worker was lost is requeued to resume (from its last checkpoint) this many times, then failed.
RANKFORGE_RUN_MAX_RESUMES = env_int("RANKFORGE_RUN_MAX_RESUMES", 1)
# GPUs a worker process owns: above 1, training kinds run under `accelerate launch` (one process per GPU).
RANKFORGE_RUN_GPUS = env_int("RANKFORGE_RUN_GPUS", 1)
RANKFORGE_RUN_MAX_LOG_LINES = env_int("RANKFORGE_RUN_MAX_LOG_LINES", 20_000)
RANKFORGE_RUN_MAX_LINE_CHARS = env_int("RANKFORGE_RUN_MAX_LINE_CHARS", 4_000)
RANKFORGE_RUN_THREADS = env_int("RANKFORGE_RUN_THREADS", 1)  # torch/OMP threads of a run unless its config says
if RANKFORGE_RUN_STALE_AFTER_S <= 2 * RANKFORGE_RUN_HEARTBEAT_S:
    raise ImproperlyConfigured("RANKFORGE_RUN_STALE_AFTER_S must exceed twice RANKFORGE_RUN_HEARTBEAT_S.")
CELERY_TASK_ROUTES = {
    "training.run_execute": {"queue": "gpu"},
    "training.sweep_runs": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE = {
    "sweep-snapshots": {"task": "labeling.sweep_snapshots", "schedule": 60.0, "options": {"queue": "default"}},
    "sweep-runs": {
        "task": "training.sweep_runs",
        "schedule": RANKFORGE_RUN_SWEEP_INTERVAL_S,
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
