"""Where the client finds its server and key: flags, then the environment, then the config file.

`limitgraph login` writes ~/.config/limitgraph/config.json ($XDG_CONFIG_HOME honoured,
$LIMITGRAPH_CONFIG names another file), readable by its owner only (mode 600).
LIMITGRAPH_URL, LIMITGRAPH_API_KEY and LIMITGRAPH_SESSION work without it (CI, scripts).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limitgraph_cli.errors import CliError, ExitCode

API_PREFIX = "/api/v1"


def config_path() -> Path:
    explicit = os.environ.get("LIMITGRAPH_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "limitgraph" / "config.json"


def load_config() -> dict[str, Any]:
    path = config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", ExitCode.USAGE) from exc
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        print(f"warning: {path} is readable by others; run: chmod 600 {path}", file=sys.stderr)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path} is not JSON ({exc}); run limitgraph login again", ExitCode.USAGE) from exc
    return data if isinstance(data, dict) else {}


def save_config(data: dict[str, Any]) -> Path:
    """Write the config atomically, created with mode 600 (never briefly readable by others)."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def normalise_url(url: str) -> str:
    """The server's root: "https://host/api/v1/" and "https://host" are the same server."""
    url = url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    if not url.startswith(("http://", "https://")):
        raise CliError(f"not an http(s) URL: {url!r}", ExitCode.USAGE)
    return url


@dataclass(frozen=True)
class Credentials:
    url: str
    api_key: str
    session: str | None
    from_config: bool  # the key came from the config file (so a default session can be saved there)


def resolve_credentials(url_flag: str | None) -> Credentials:
    config = load_config()
    url = url_flag or os.environ.get("LIMITGRAPH_URL") or config.get("url")
    env_key = os.environ.get("LIMITGRAPH_API_KEY")
    api_key = env_key or config.get("api_key")
    if not url or not api_key:
        raise CliError(
            "not logged in: run `limitgraph login --url URL`, or set LIMITGRAPH_URL and LIMITGRAPH_API_KEY",
            ExitCode.AUTH,
        )
    session = os.environ.get("LIMITGRAPH_SESSION") or config.get("session")
    return Credentials(normalise_url(url), api_key, session, from_config=not env_key)
