"""Flower's configuration: `celery -A config flower` loads it from the repository root
(Flower's `--conf` defaults to ./flowerconfig.py; tornado executes this file).

- Flower refuses to start without credentials: FLOWER_BASIC_AUTH (`user:password`, read
  from the environment by Flower itself), FLOWER_BASIC_AUTH_FILE (a file holding
  `user:password` lines, e.g. a Docker secret) or OAuth (`--auth` and FLOWER_OAUTH2_*).
- Never `--basic-auth` on the command line: `ps` shows every process's arguments to every
  user of the host. Flower refuses that too.
- Flower serves /metrics and /healthcheck to anyone even when it has credentials: here
  they need them like every other page.
"""

import os
import sys

import tornado.web
from flower.views import monitor
from tornado.options import options as _flower_options

if any(arg.lstrip("-").replace("-", "_").startswith("basic_auth") for arg in sys.argv):
    raise SystemExit(
        "flowerconfig.py: credentials on the command line are visible to every user of the host "
        "(ps). Pass them as FLOWER_BASIC_AUTH=user:password or FLOWER_BASIC_AUTH_FILE=<path>."
    )

_auth_file = os.environ.get("FLOWER_BASIC_AUTH_FILE")
if _auth_file:
    with open(_auth_file) as _credentials:
        # tornado sets each option this file defines a name for
        basic_auth = [line.strip() for line in _credentials if line.strip()]
        _flower_options.basic_auth = basic_auth

if not (_flower_options.basic_auth or _flower_options.auth):
    raise SystemExit(
        "flowerconfig.py: Flower has no credentials and would be open to anyone who can reach it. "
        "Set FLOWER_BASIC_AUTH=user:password (or FLOWER_BASIC_AUTH_FILE, or --auth with OAuth)."
    )


def _require_login(handler: tornado.web.RequestHandler) -> None:
    # current_user checks basic auth (raising a 401 itself) or the OAuth cookie
    if not handler.current_user:
        raise tornado.web.HTTPError(401)


monitor.Metrics.prepare = _require_login
monitor.Healthcheck.prepare = _require_login
