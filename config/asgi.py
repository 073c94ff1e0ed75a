"""The web application as served: `gunicorn -c config/gunicorn.py config.asgi`.

Django behind apps.core.asgi.RequestGuard, which refuses over-limit heads and bodies
and bounds the time a body may take, in the project's JSON error shape. Django's handler is
apps.core.asgi_handler's, which runs a request's synchronous work in one thread hop.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Each ASGI request runs its sync code in a thread of its own, so a persistent
# database connection would outlive its thread unclosed (Django's docs: disable
# persistent connections under ASGI). Workers keep theirs.
os.environ.setdefault("CONN_MAX_AGE", "0")
# ... and borrow pooled connections instead (PostgreSQL; SQLite opens a file, which is cheap).
os.environ.setdefault("DATABASE_POOL", "1")

import django  # noqa: E402 (after the environment it reads)
from django.conf import settings  # noqa: E402

django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from apps.core.asgi import RequestGuard  # noqa: E402
from apps.core.asgi_handler import OneHopASGIHandler  # noqa: E402

application = RequestGuard(
    OneHopASGIHandler(),
    max_body_bytes=settings.MAX_REQUEST_BODY_BYTES,
    body_timeout_seconds=settings.REQUEST_BODY_TIMEOUT_SECONDS,
    max_head_bytes=settings.MAX_REQUEST_HEAD_BYTES,
    max_target_bytes=settings.MAX_REQUEST_TARGET_BYTES,
    max_headers=settings.MAX_REQUEST_HEADERS,
)
