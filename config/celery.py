"""The Celery app. Tasks live in workers/; queues and routes in workers/routing.py."""

from __future__ import annotations

import os

from celery import Celery

from config.redis_transport import use_for_redis_urls
from workers.routing import configure_routing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

use_for_redis_urls()
app = Celery("limitgraph", include=["workers.runs", "workers.control", "workers.plots", "workers.governance"])
app.config_from_object("django.conf:settings", namespace="CELERY")
configure_routing(app)
# Celery's Django fixup closes the database connection before and after every task unless
# this is set: a reconnect per task cost a short run more than its own work. Connections are
# kept and checked instead as Django checks them per request (workers.bootstrap).
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000
