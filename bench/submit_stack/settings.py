"""The platform's settings plus the bare baseline endpoint (bench/submit.py only)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.submit_stack.urls"
