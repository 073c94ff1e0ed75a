"""The sandbox runner, called directly: isolation, every limit, cancel, and what survives."""

from __future__ import annotations

import dataclasses
import os
import socket
import textwrap
import time
from pathlib import Path

import pytest

from tests.workers.sandbox.conftest import SMALL
from workers.sandbox import (
    CPU_TIME,
    FILE_SIZE,
    MEMORY,
    OPEN_FILES,
    OUTPUT,
    PROCESSES,
    TIMEOUT,
    WORKSPACE,
    Outcome,
    Sandbox,
    UnknownInterpreter,
)


def run(sandbox: Sandbox, workspace: Path, code: str, **changes: object) -> Outcome:
    limits = dataclasses.replace(SMALL, **changes)
    return sandbox.run(code=textwrap.dedent(code), workspace_dir=workspace, limits=limits)


def processes_of(uid: int) -> list[int]:
    """Live processes of `uid` (a zombie is dead: it only waits for its parent to reap it)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                zombie = "\nState:\tZ" in Path(f"/proc/{entry.name}/status").read_text()
                if entry.stat().st_uid == uid and not zombie:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# A daemon (double fork, new session) that appends to `beat` in the workspace every 20 ms.
DAEMON = """
import os, sys, time
print(os.getuid(), flush=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            with open("beat", "a") as f:
                f.write(".")
            time.sleep(0.02)
    os._exit(0)
"""


def assert_tree_gone(workspace: Path, outcome: Outcome) -> None:
    """Nothing the run started is alive: its heartbeat file stopped, its uid has no process."""
    beat = workspace / "beat"
    size = beat.stat().st_size if beat.exists() else 0
    time.sleep(0.2)
    assert (beat.stat().st_size if beat.exists() else 0) == size
    uid = int(outcome.stdout.split()[0])
    if uid != os.getuid():
        assert processes_of(uid) == []


def test_stdout_stderr_and_exit_code_come_back(sandbox, make_workspace):
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"
    outcome = run(sandbox, make_workspace(), code)
    assert (outcome.stdout, outcome.stderr, outcome.exit_code, outcome.limit) == ("out\n", "err\n", 3, None)
    assert outcome.duration_seconds > 0 and outcome.peak_memory_mb > 1


def test_an_uncaught_exception_is_exit_code_1_with_its_traceback(sandbox, make_workspace):
    outcome = run(sandbox, make_workspace(), "raise ValueError('boom')")
    assert outcome.exit_code == 1 and outcome.limit is None
    assert 'File "/sandbox/main.py", line 1' in outcome.stderr and "ValueError: boom" in outcome.stderr


def test_the_environment_is_built_from_nothing(sandbox, make_workspace, monkeypatch):
    # given secrets in the worker's own environment
    monkeypatch.setenv("DATABASE_URL", "postgres://secret-db")
    monkeypatch.setenv("SECRET_KEY", "secret-key-value")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://secret-broker")
    code = "import os, json; print(json.dumps(dict(os.environ))); print(open('/proc/self/environ').read())"

    outcome = sandbox.run(code=code, workspace_dir=make_workspace(), limits=SMALL, env={"APP_MODE": "x"})

    assert outcome.exit_code == 0, outcome.stderr
    seen = outcome.stdout.splitlines()[0]
    assert "secret" not in outcome.stdout
    assert set(eval(seen)) <= {"PATH", "HOME", "TMPDIR", "LANG", "APP_MODE", "PWD", "LC_CTYPE"}
    assert eval(seen)["APP_MODE"] == "x" and eval(seen)["HOME"] == "/workspace"


def test_environment_values_stay_off_the_hosts_command_lines(sandbox, make_workspace):
    seen: list[int] = []

    def tick(elapsed: float) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if b"marker-4711" in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                    seen.append(int(entry.name))
            except OSError:
                continue

    code = "import os, time\nprint(os.environ['APP_TOKEN'])\ntime.sleep(0.5)"
    env = {"APP_TOKEN": "marker-4711"}
    outcome = sandbox.run(code=code, workspace_dir=make_workspace(), limits=SMALL, env=env, on_tick=tick)
    assert outcome.stdout == "marker-4711\n" and seen == []


def test_the_network_is_closed(sandbox, make_workspace):
    # PostgreSQL and Redis do listen on the host, so a failure inside means isolation
    for port in (5432, 6379):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    code = """
    import socket
    print([name for _, name in socket.if_nameindex()])
    for address in [("127.0.0.1", 5432), ("127.0.0.1", 6379), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
        try:
            socket.create_connection(address, timeout=2).close()
            print("connected", address)
        except OSError as exc:
            print("refused", address, exc.errno)
    try:
        socket.getaddrinfo("example.com", 80)
        print("resolved")
    except OSError:
        print("no dns")
    """
    outcome = run(sandbox, make_workspace(), code)
    lines = outcome.stdout.splitlines()
    assert lines[0] == "['lo']"
    assert all(line.startswith("refused") for line in lines[1:5]), outcome.stdout
    assert lines[5] == "no dns"


def test_the_filesystem_is_read_only_but_for_the_workspace_and_a_private_tmp(sandbox, make_workspace):
    # given another session's workspace holding a file, and a file in the host's /tmp
    other = make_workspace()
    (other / "secret.txt").write_text("other session")
    host_tmp = Path("/tmp") / f"lg-host-{os.getpid()}"
    host_tmp.write_text("host")
    code = f"""
    import os
    targets = ["/x", "/usr/x", "/etc/x", "/dev/x", "/sandbox/main.py", "/tmp/x", "/workspace/x", "/dev/shm/x"]
    for path in targets:
        try:
            open(path, "w").write("1")
            print("wrote", path)
        except OSError as exc:
            print("no", path)
    for path in [{str(other / "secret.txt")!r}, {str(host_tmp)!r}, "/etc/passwd", "/work", "/root", "/home"]:
        print("exists" if os.path.exists(path) else "absent", path)
    """
    try:
        outcome = run(sandbox, make_workspace(), code)
    finally:
        host_tmp.unlink()
    lines = outcome.stdout.splitlines()
    wrote = [line.split()[1] for line in lines if line.startswith("wrote")]
    assert wrote == ["/tmp/x", "/workspace/x", "/dev/shm/x"], outcome.stdout + outcome.stderr
    assert all(line.startswith("absent") for line in lines if "exists" in line or "absent" in line)
    assert sum(line.startswith("absent") for line in lines) == 6


def test_no_user_namespace_can_be_made_inside(sandbox, make_workspace):
    code = """
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    print(libc.unshare(0x10000000), os.getpid(), os.getuid() != 0)
    """
    outcome = run(sandbox, make_workspace(), code)
    assert outcome.stdout == "-1 2 True\n", outcome.stderr  # refused; the program is pid 2, after the init


def test_files_persist_in_the_workspace_and_are_the_workers_between_runs(sandbox, make_workspace):
    workspace = make_workspace()
    first = run(sandbox, workspace, "open('kept.txt', 'w').write('from run 1'); import os; os.mkdir('d')")
    assert first.exit_code == 0, first.stderr
    assert (workspace / "kept.txt").stat().st_uid == os.getuid()
    second = run(sandbox, workspace, "print(open('kept.txt').read())")
    assert second.stdout == "from run 1\n"


def test_an_unknown_interpreter_is_refused(sandbox, make_workspace):
    with pytest.raises(UnknownInterpreter):
        sandbox.run(code="", workspace_dir=make_workspace(), limits=SMALL, interpreter="perl")


# -- limits ------------------------------------------------------------------------------


def test_wall_time_kills_the_whole_tree_daemons_included(sandbox, make_workspace):
    workspace = make_workspace()
    outcome = run(sandbox, workspace, DAEMON + "time.sleep(60)", timeout_seconds=1.0)
    assert outcome.limit == TIMEOUT and outcome.exit_code is None
    assert 1.0 <= outcome.duration_seconds < 3.0
    assert (workspace / "beat").exists()
    assert_tree_gone(workspace, outcome)


def test_a_daemon_dies_when_the_program_ends(sandbox, make_workspace):
    workspace = make_workspace()
    outcome = run(sandbox, workspace, DAEMON + "time.sleep(0.2)")
    assert outcome.exit_code == 0 and outcome.limit is None
    assert_tree_gone(workspace, outcome)


def test_cpu_time(sandbox, make_workspace):
    outcome = run(sandbox, make_workspace(), "while True: pass", cpu_seconds=1, timeout_seconds=20)
    assert outcome.limit == CPU_TIME and outcome.exit_code == 137


def test_memory(sandbox, make_workspace):
    code = "chunks = []\nwhile True: chunks.append(bytearray(8 * 1024 * 1024))"
    outcome = run(sandbox, make_workspace(), code, memory_bytes=128 * 1024 * 1024)
    assert outcome.limit == MEMORY and outcome.exit_code == 1
    assert 64 < outcome.peak_memory_mb <= 128


def test_a_fork_bomb_ends_with_the_process_limit(sandbox, make_workspace):
    outcome = run(sandbox, make_workspace(), "import os\nwhile True: os.fork()", processes=8)
    assert outcome.limit == PROCESSES


def test_a_fork_bomb_that_ignores_its_errors_is_killed(sandbox, make_workspace):
    workspace = make_workspace()
    code = (
        DAEMON
        + """
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    )
    outcome = run(sandbox, workspace, code, processes=8)
    assert outcome.limit == PROCESSES and outcome.exit_code is None
    assert_tree_gone(workspace, outcome)


def test_threads_count_as_processes(sandbox, make_workspace):
    code = """
    import threading, time
    for _ in range(40):
        threading.Thread(target=time.sleep, args=(5,)).start()
    """
    outcome = run(sandbox, make_workspace(), code, processes=8)
    assert outcome.limit == PROCESSES


def test_output_is_truncated_with_a_marker(sandbox, make_workspace):
    code = "import sys\nsys.stdout.write('a' * 100_000 + 'END')\nprint('fine', file=sys.stderr)"
    outcome = run(sandbox, make_workspace(), code, output_bytes=10_000)
    assert outcome.limit == OUTPUT and outcome.exit_code == 0
    assert outcome.stdout.startswith("a" * 1000) and outcome.stdout.endswith("aEND")
    assert "bytes omitted by the sandbox: output is limited to 10000 bytes" in outcome.stdout
    assert len(outcome.stdout) < 10_200 and outcome.stderr == "fine\n"


def test_file_size(sandbox, make_workspace):
    code = "open('big', 'wb').write(b'x' * 2_000_000)"
    outcome = run(sandbox, make_workspace(), code, file_bytes=1_000_000)
    assert outcome.limit == FILE_SIZE and "File too large" in outcome.stderr


def test_open_files(sandbox, make_workspace):
    outcome = run(sandbox, make_workspace(), "files = [open('/dev/null') for _ in range(100)]", open_files=32)
    assert outcome.limit == OPEN_FILES


def test_workspace_size_is_checked_while_the_run_writes(sandbox, make_workspace):
    code = """
    import time
    for i in range(1000):
        open(f"f{i}", "wb").write(b"x" * 500_000)
        time.sleep(0.01)
    """
    workspace = make_workspace()
    outcome = run(sandbox, workspace, code, workspace_bytes=4_000_000, file_bytes=1_000_000)
    assert outcome.limit == WORKSPACE and outcome.exit_code is None
    assert len(list(workspace.iterdir())) < 100


def test_tmp_is_bounded(sandbox, make_workspace):
    code = "for i in range(10): open(f'/tmp/big{i}', 'wb').write(b'x' * 900_000)"
    outcome = run(sandbox, make_workspace(), code)
    assert outcome.exit_code == 1 and "No space left on device" in outcome.stderr


def test_the_runner_serves_normally_after_bombs(sandbox, make_workspace):
    run(sandbox, make_workspace(), "import os\nwhile True: os.fork()", processes=8)
    run(sandbox, make_workspace(), "x = bytearray(10**10)")
    assert run(sandbox, make_workspace(), "print(1)").stdout == "1\n"


# -- cancel ------------------------------------------------------------------------------


class Cancelled(Exception):
    pass


def test_a_cancel_from_on_tick_kills_the_tree_at_once(sandbox, make_workspace):
    workspace = make_workspace()
    uid_file = workspace / "uid"
    code = DAEMON.replace("print(os.getuid(), flush=True)", "open('uid', 'w').write(str(os.getuid()))")
    requested: list[float] = []

    def tick(elapsed: float) -> None:
        if (workspace / "beat").exists():
            requested.append(time.monotonic())
            raise Cancelled

    with pytest.raises(Cancelled):
        sandbox.run(code=code + "time.sleep(60)", workspace_dir=workspace, limits=SMALL, on_tick=tick)
    assert time.monotonic() - requested[0] < 1.0
    fake = Outcome("", "", None, 0, 0, None) if not uid_file.exists() else None
    assert_tree_gone(workspace, fake or Outcome(uid_file.read_text(), "", None, 0, 0, None))


# -- the weaker mode ---------------------------------------------------------------------


def test_unsandboxed_mode_still_limits_scrubs_and_kills(bwrap, workspace_root, make_workspace, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "secret-key-value")
    weak = Sandbox(
        mode="unsandboxed",
        interpreters={"python3": "/usr/bin/python3"},
        state_dir=workspace_root / ".sandbox-weak",
        uid_base=220_000,
        uid_slots=4,
    )
    workspace = make_workspace()
    outcome = run(weak, workspace, "import os; print(os.getcwd()); print(sorted(os.environ))")
    assert outcome.exit_code == 0 and "secret" not in outcome.stdout
    assert outcome.stdout.splitlines()[0] == str(workspace)
    killed = run(weak, workspace, DAEMON + "time.sleep(60)", timeout_seconds=1.0)
    assert killed.limit == TIMEOUT
    if os.getuid() == 0:  # the daemon escaped the process group: only its uid's sweep ends it
        assert_tree_gone(workspace, killed)
