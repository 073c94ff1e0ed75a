"""The sandbox runner behind the `python` run kind: Sandbox.run(code, workspace, limits).

`sandbox_from_settings()` builds it from config.settings (SANDBOX_*), refusing with
SandboxUnavailable, and a message saying what to do, when bubblewrap is missing and
SANDBOX_ALLOW_UNSANDBOXED is off; `sandbox_health()` also runs a trivial program in it
and is what a worker's heartbeat and /ready report.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from workers.sandbox.runner import (
    CPU_TIME,
    DEFAULT_INTERPRETER,
    FILE_SIZE,
    MEMORY,
    OPEN_FILES,
    OUTPUT,
    PROCESSES,
    TIMEOUT,
    WORKSPACE,
    Limits,
    Outcome,
    Sandbox,
    SandboxUnavailable,
    UnknownInterpreter,
    interpreter_layout,
)

__all__ = [
    "CPU_TIME",
    "DEFAULT_INTERPRETER",
    "FILE_SIZE",
    "MEMORY",
    "OPEN_FILES",
    "OUTPUT",
    "PROCESSES",
    "TIMEOUT",
    "WORKSPACE",
    "Limits",
    "Outcome",
    "Sandbox",
    "SandboxUnavailable",
    "UnknownInterpreter",
    "limits_from_settings",
    "sandbox_from_settings",
    "sandbox_health",
    "state_dir",
]

HEALTH_TIMEOUT_SECONDS = 20.0
INSTALL_HINT = (
    "install bubblewrap on this worker (Debian/Ubuntu: apt-get install bubblewrap), or set "
    "SANDBOX_ALLOW_UNSANDBOXED=1 to run python runs without isolation (the README says what that lacks)"
)


def state_dir() -> Path:
    """The runner's own files (lock files) beside the workspaces, closed to the sandboxes."""
    return Path(settings.RUN_WORKSPACE_ROOT) / ".sandbox"


def _unsearchable_ancestor(path: Path) -> Path | None:
    """The first directory on the way to `path` that other users may not enter."""
    for directory in [*reversed(path.parents), path]:
        try:
            mode = os.stat(directory).st_mode
        except FileNotFoundError:
            return None
        if not mode & stat.S_IXOTH:
            return directory
    return None


def _prepare_workspace_root(per_run_uid: bool) -> None:
    root = Path(settings.RUN_WORKSPACE_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    if not per_run_uid:
        return
    # Each sandbox runs under its own uid: it must be able to enter the root (not list it)
    # to reach its own session's directory, which is its own only while it runs.
    if not os.stat(root).st_mode & stat.S_IXOTH:
        os.chmod(root, 0o711)
    blocked = _unsearchable_ancestor(root)
    if blocked is not None:
        raise SandboxUnavailable(
            f"the sandbox's uid cannot reach RUN_WORKSPACE_ROOT ({root}): {blocked} is closed to other "
            f"users; make it searchable (chmod o+x {blocked}) or move RUN_WORKSPACE_ROOT"
        )


def sandbox_from_settings() -> Sandbox:
    """The sandbox this worker offers; SandboxUnavailable (saying what to do) if none."""
    bwrap = shutil.which(settings.SANDBOX_BWRAP)
    if bwrap is None and not settings.SANDBOX_ALLOW_UNSANDBOXED:
        raise SandboxUnavailable(f"bubblewrap ({settings.SANDBOX_BWRAP}) is not installed: {INSTALL_HINT}")
    per_run_uid = os.getuid() == 0
    _prepare_workspace_root(per_run_uid)
    return Sandbox(
        mode="bwrap" if bwrap else "unsandboxed",
        bwrap=bwrap,
        interpreters=settings.SANDBOX_INTERPRETERS,
        state_dir=state_dir(),
        uid_base=settings.SANDBOX_UID_BASE,
        uid_slots=settings.SANDBOX_UID_SLOTS,
        nice=settings.SANDBOX_NICE,
    )


def limits_from_settings(*, timeout_seconds: float, memory_mb: int) -> Limits:
    return Limits(
        timeout_seconds=timeout_seconds,
        cpu_seconds=max(1, int(min(timeout_seconds + 0.999, settings.SANDBOX_MAX_CPU_SECONDS))),
        memory_bytes=memory_mb * 1024 * 1024,
        processes=settings.SANDBOX_MAX_PROCESSES,
        output_bytes=settings.SANDBOX_MAX_OUTPUT_BYTES,
        file_bytes=settings.SANDBOX_MAX_FILE_BYTES,
        open_files=settings.SANDBOX_MAX_OPEN_FILES,
        tmp_bytes=settings.SANDBOX_TMP_BYTES,
        workspace_bytes=settings.SANDBOX_WORKSPACE_MAX_BYTES,
        workspace_files=settings.SANDBOX_WORKSPACE_MAX_FILES,
    )


def _bwrap_version(bwrap: str) -> str:
    try:
        done = subprocess.run([bwrap, "--version"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.decode(errors="replace").strip() or "unknown"


def _probe(sandbox: Sandbox, interpreter: str) -> str | None:
    """None when `print(1)` runs in the sandbox with this interpreter, else why not."""
    # beside the sessions' workspaces (the state directory is closed to the sandbox's uid)
    probe_dir = Path(settings.RUN_WORKSPACE_ROOT) / ".health"
    probe_dir.mkdir(exist_ok=True, mode=0o700)
    try:
        layout = interpreter_layout(sandbox.interpreters[interpreter])
        if sandbox.own_uid:
            for prefix in layout.prefixes:
                blocked = _unsearchable_ancestor(Path(prefix))
                if blocked is not None:
                    return (
                        f"the sandbox's uid cannot reach {layout.path}: {blocked} is closed to other users "
                        "(make it searchable, or name an interpreter outside it in SANDBOX_INTERPRETERS)"
                    )
        outcome = sandbox.run(
            code="print(1)",
            workspace_dir=probe_dir,
            limits=Limits(timeout_seconds=HEALTH_TIMEOUT_SECONDS, cpu_seconds=int(HEALTH_TIMEOUT_SECONDS)),
            interpreter=interpreter,
        )
    except (SandboxUnavailable, OSError) as exc:
        return str(exc)
    if outcome.exit_code != 0 or outcome.stdout.strip() != "1":
        return f"print(1) gave exit code {outcome.exit_code}: {outcome.stderr.strip()[-500:]}"
    return None


def sandbox_health() -> dict[str, Any]:
    """What a worker reports about its sandbox: {"available", "mode", "reason", ...}.

    Available means a trivial program ran through it with the default interpreter
    (or, without one named "python3", the first configured).
    """
    checked_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        sandbox = sandbox_from_settings()
    except (SandboxUnavailable, OSError) as exc:
        return {"available": False, "mode": None, "reason": str(exc), "checked_at": checked_at}
    names = list(sandbox.interpreters)
    default = DEFAULT_INTERPRETER if DEFAULT_INTERPRETER in names else (names[0] if names else None)
    problems = {name: _probe(sandbox, name) for name in names}
    reason = problems.get(default) if default else "no interpreter is configured (SANDBOX_INTERPRETERS)"
    health: dict[str, Any] = {
        "available": default is not None and reason is None,
        "mode": sandbox.mode,
        "reason": reason or "",
        "interpreters": {name: problem or "ok" for name, problem in problems.items()},
        "uid_per_run": sandbox.own_uid,
        "checked_at": checked_at,
    }
    if sandbox.bwrap:
        health["bwrap"] = _bwrap_version(sandbox.bwrap)
    else:
        health["warning"] = "unsandboxed: no namespaces (network, filesystem and processes are the host's)"
    return health
