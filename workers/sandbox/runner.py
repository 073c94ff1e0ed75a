"""Runs untrusted Python in a bubblewrap sandbox under hard limits.

Isolation (mode "bwrap"): `bwrap` puts the program in new user, PID, network, IPC, UTS
(and, where the kernel allows, cgroup) namespaces, with no further user namespaces
allowed inside. Its filesystem is a read-only tmpfs holding read-only binds of the host's
/usr (and /bin, /lib* as they are on the host) and of the interpreter's own prefixes, a
/proc of its own PID namespace, a minimal read-only /dev, size-bounded tmpfs on /tmp and
/dev/shm, the code at /sandbox/main.py, and the session's workspace at /workspace: the
only writable host directory. The network namespace has a loopback interface and
nothing else. The program runs as `python -I -S /sandbox/main.py` (`-I` alone for a
virtualenv, so that its packages load), in a new session, with an environment built
from nothing.

Processes: the PID namespace's init is a few lines of Python (INIT below) that starts
the program, reaps whatever is orphaned to it, and reports the program's exit status,
peak memory and CPU time on a pipe; the worker cannot measure them itself, because
anything it forks inherits the worker's own memory high-water mark. When the init
ends (the program exited, or the supervisor killed the init) the kernel kills every
process left in the namespace, grandchildren and daemons included; `--die-with-parent`
does the same when the worker dies.

Limits: setrlimit in the child before bwrap starts (address space, CPU seconds,
processes, file size, open files, no core files), inherited by every process inside.
A worker running as root gives each sandbox a uid of its own (SANDBOX_UID_BASE + a
slot held by a flock), because RLIMIT_NPROC counts a real uid's processes and root is
exempt from it. The supervisor here enforces the rest while it drains stdout and
stderr: wall time, output size, the workspace's size, and the number of processes and
threads it samples in the sandbox's PID namespace.

A limit hit is an Outcome naming it, never an exception: exceptions are for a sandbox
that cannot start (SandboxUnavailable) and for the caller's own `on_tick` (a cancel).
"""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workers.sandbox import locks, workspace

DEFAULT_INTERPRETER = "python3"

# Names of the limits an Outcome can name (the result's `limit`).
TIMEOUT = "timeout"
CPU_TIME = "cpu_time"
MEMORY = "memory"
PROCESSES = "processes"
OUTPUT = "output"
FILE_SIZE = "file_size"
OPEN_FILES = "open_files"
WORKSPACE = "workspace"

SANDBOX_CODE_PATH = "/sandbox/main.py"
SANDBOX_WORKSPACE = "/workspace"
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

# The supervisor's rhythm: select() timeout, and how often the costlier checks run.
POLL_SECONDS = 0.02
TICK_SECONDS = 0.2
PROCESS_SCAN_SECONDS = 0.1
WORKSPACE_SCAN_SECONDS = 1.0
# After the init exits, how long leftover writers (unsandboxed only) may hold the pipes.
DRAIN_SECONDS = 1.0
# How long bwrap has to reap a killed sandbox before it is killed too.
KILL_GRACE_SECONDS = 1.0
# bwrap's outer process and the init run under the code's uid and count against
# RLIMIT_NPROC; one spare lets a fork bomb overfill the namespace where the scan sees it.
NPROC_OVERHEAD = 3
# Kept from the end of each stream when it is truncated (a traceback is at the end).
TAIL_BYTES = 8192
READ_BYTES = 65536
PROBE_TIMEOUT_SECONDS = 30
# rusage is sampled at clock ticks: a process killed at RLIMIT_CPU may show a bit less.
CPU_SEEN_FRACTION = 0.9

# The PID namespace's init. Only builtin modules (no import time): `posix`, `sys`.
INIT = """\
import posix, sys
report, program = int(sys.argv[1]), sys.argv[2:]
posix.set_inheritable(report, False)
child = posix.fork()
if child == 0:
    try:
        posix.execv(program[0], program)
    finally:
        posix._exit(127)
status, peak, cpu = 0, 0, 0.0
while True:
    try:
        pid, waited, usage = posix.wait4(-1, 0)
    except ChildProcessError:
        break
    peak = max(peak, usage.ru_maxrss)
    cpu += usage.ru_utime + usage.ru_stime
    if pid == child:
        status = waited
        break
posix.write(report, ("%d %d %.6f\\n" % (status, peak, cpu)).encode())
posix._exit(posix.WEXITSTATUS(status) if posix.WIFEXITED(status) else 128 + posix.WTERMSIG(status))
"""

_MEMORY_ERROR = re.compile(rb"^MemoryError\b", re.MULTILINE)
_FILE_TOO_LARGE = re.compile(rb"\[Errno 27\] File too large")
_TOO_MANY_FILES = re.compile(rb"\[Errno 24\] Too many open files")
_NO_PROCESS = re.compile(rb"^BlockingIOError: \[Errno 11\]|can't start new thread", re.MULTILINE)


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run anything here (tool missing, namespaces refused, bad setup)."""


class UnknownInterpreter(ValueError):
    pass


@dataclass(frozen=True)
class Limits:
    timeout_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 256 * 1024 * 1024
    processes: int = 32  # processes and threads, the program's main process included
    output_bytes: int = 1024 * 1024  # stdout and stderr each
    file_bytes: int = 64 * 1024 * 1024
    open_files: int = 256
    tmp_bytes: int = 64 * 1024 * 1024  # /tmp and /dev/shm each
    workspace_bytes: int = 256 * 1024 * 1024
    workspace_files: int = 10_000


@dataclass
class Outcome:
    stdout: str
    stderr: str
    exit_code: int | None  # as a shell reports it; None when the sandbox killed the program
    duration_seconds: float
    peak_memory_mb: float
    limit: str | None
    cpu_seconds: float = 0.0


class _Stream:
    """One output stream: its first bytes up to a cap, then its last TAIL_BYTES."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.tail_keep = min(TAIL_BYTES, cap // 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - self.tail_keep - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            del self.tail[: max(0, len(self.tail) - self.tail_keep)]

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def last_bytes(self) -> bytes:
        return bytes(self.tail) if self.truncated else bytes((self.head + self.tail)[-TAIL_BYTES:])

    def text(self) -> str:
        head, tail = (part.decode("utf-8", errors="replace") for part in (self.head, self.tail))
        if not self.truncated:
            return head + tail
        omitted = self.total - len(self.head) - len(self.tail)
        marker = f"[... {omitted} bytes omitted by the sandbox: output is limited to {self.cap} bytes ...]"
        return f"{head}\n{marker}\n{tail}"


@dataclass
class _Status:
    """What bwrap reports on --json-status-fd: its child's pid and namespaces."""

    buffer: str = ""
    child_pid: int | None = None
    pid_namespace: int | None = None

    def feed(self, data: bytes) -> None:
        self.buffer += data.decode("utf-8", errors="replace")
        decoder, position = json.JSONDecoder(), 0
        while True:
            while position < len(self.buffer) and self.buffer[position].isspace():
                position += 1
            try:
                document, position = decoder.raw_decode(self.buffer, position)
            except ValueError:
                break
            self.child_pid = document.get("child-pid", self.child_pid)
            self.pid_namespace = document.get("pid-namespace", self.pid_namespace)
        self.buffer = self.buffer[position:]


@dataclass
class _Report:
    """The init's one line: wait status, peak RSS (KiB) and CPU seconds of the program."""

    buffer: bytes = b""
    status: int | None = None
    peak_kib: int = 0
    cpu_seconds: float = 0.0

    def feed(self, data: bytes) -> None:
        self.buffer = (self.buffer + data)[-256:]
        if self.buffer.endswith(b"\n"):
            try:
                status, peak, cpu = self.buffer.split()[-3:]
                self.status, self.peak_kib, self.cpu_seconds = int(status), int(peak), float(cpu)
            except ValueError:
                pass


@dataclass(frozen=True)
class InterpreterLayout:
    path: str
    prefixes: tuple[str, ...]  # directories the interpreter reads, bound read-only
    virtualenv: bool

    @property
    def flags(self) -> list[str]:
        return ["-I"] if self.virtualenv else ["-I", "-S"]


@functools.cache
def interpreter_layout(path: str) -> InterpreterLayout:
    """Ask the interpreter (a trusted, configured path) where its files are."""
    probe = (
        "import json, sys; "
        "print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))"
    )
    try:
        done = subprocess.run(
            [path, "-I", "-S", "-c", probe],
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"},
        )
        prefix, base_prefix, exec_prefix, base_exec_prefix = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"interpreter {path} does not run: {exc}") from exc
    directories = {prefix, base_prefix, exec_prefix, base_exec_prefix}
    directories |= {os.path.dirname(os.path.abspath(path)), os.path.dirname(os.path.realpath(path))}
    if "/" in directories:
        raise SandboxUnavailable(f"interpreter {path} lives at the filesystem root; give it a prefix")
    return InterpreterLayout(path=path, prefixes=_outermost(directories), virtualenv=prefix != base_prefix)


def _outermost(directories: set[str]) -> tuple[str, ...]:
    """The directories not inside another one of them, nor inside the system's /usr."""
    kept: list[str] = []
    for directory in sorted(directories, key=len):
        if any(directory == k or directory.startswith(k.rstrip("/") + "/") for k in [*kept, "/usr"]):
            continue
        kept.append(directory)
    return tuple(sorted(kept))


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for directory in SYSTEM_DIRS:
        if os.path.islink(directory):
            args += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            args += ["--ro-bind", directory, directory]
    return args


def _own_task_count() -> int:
    """Threads of every process of this uid (RLIMIT_NPROC counts them all)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


@dataclass(frozen=True)
class _Census:
    tasks: int  # threads of every process the predicate admits
    peak_kib: int  # the largest VmHWM among them


def _census(belongs: Callable[[str], bool]) -> _Census:
    tasks = peak = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if not belongs(entry.name):
                continue
            tasks += len(os.listdir(f"/proc/{entry.name}/task"))
            with open(f"/proc/{entry.name}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
                        break
        except (OSError, ValueError):
            continue
    return _Census(tasks=tasks, peak_kib=peak)


def _in_pid_namespace(namespace: int) -> Callable[[str], bool]:
    wanted = f"pid:[{namespace}]"
    return lambda pid: os.readlink(f"/proc/{pid}/ns/pid") == wanted


def _owned_by(uid: int) -> Callable[[str], bool]:
    return lambda pid: os.stat(f"/proc/{pid}").st_uid == uid


class Sandbox:
    """Runs code under limits, in bubblewrap (mode "bwrap") or, where an operator allowed
    it, as a bare limited subprocess (mode "unsandboxed": see the README for what it lacks)."""

    def __init__(
        self,
        *,
        mode: str,
        interpreters: Mapping[str, str],
        state_dir: Path,
        bwrap: str | None = None,
        uid_base: int = 200_000,
        uid_slots: int = 64,
        nice: int = 10,
    ) -> None:
        if mode not in ("bwrap", "unsandboxed"):
            raise ValueError(f"unknown sandbox mode {mode!r}")
        if mode == "bwrap" and not bwrap:
            raise SandboxUnavailable("bubblewrap (bwrap) was not found")
        self.mode = mode
        self.bwrap = bwrap
        self.interpreters = dict(interpreters)
        self.state_dir = state_dir
        self.uid_base = uid_base
        self.uid_slots = uid_slots
        self.nice = nice
        self.own_uid = os.getuid() == 0 and os.geteuid() == 0
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def _identity(self, waiting: Callable[[], None] | None) -> Iterator[tuple[int, int] | None]:
        """A uid:gid no other running sandbox has (as root), else None (this worker's own)."""
        if not self.own_uid:
            yield None
            return
        slots = [self.state_dir / f"uid-{slot}.lock" for slot in range(self.uid_slots)]
        with locks.one_of(slots, waiting=waiting) as slot:
            uid = self.uid_base + slot
            if self.mode == "unsandboxed":
                _kill_all_of(uid)  # whatever an earlier run of this uid left behind
            yield uid, uid

    def run(
        self,
        *,
        code: str,
        workspace_dir: Path,
        limits: Limits,
        interpreter: str = DEFAULT_INTERPRETER,
        env: Mapping[str, str] | None = None,
        on_tick: Callable[[float], None] | None = None,
    ) -> Outcome:
        """Run `code` with `workspace_dir` as its writable working directory.

        `on_tick(elapsed_seconds)` is called every TICK_SECONDS while the code runs; an
        exception from it kills the process tree at once and propagates (a cancel).
        """
        try:
            path = self.interpreters[interpreter]
        except KeyError:
            raise UnknownInterpreter(f"no interpreter named {interpreter!r}") from None
        layout = interpreter_layout(path)
        with self._identity(on_tick and (lambda: on_tick(0.0))) as identity:
            weak = self.mode == "unsandboxed"
            if identity is not None:
                workspace.hand_over(workspace_dir, *identity, skip_hard_links=weak)
            try:
                return self._run(code, workspace_dir, limits, layout, dict(env or {}), identity, on_tick)
            finally:
                if identity is not None:
                    if weak:
                        _kill_all_of(identity[0])
                    workspace.hand_over(workspace_dir, os.getuid(), os.getgid(), skip_hard_links=weak)

    def _environment(self, layout: InterpreterLayout, env: dict[str, str], home: str) -> dict[str, str]:
        base = {
            "PATH": f"{os.path.dirname(layout.path)}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
        }
        return {**base, **env}

    def _setenv_args(self, layout: InterpreterLayout, env: dict[str, str]) -> bytes:
        pairs = self._environment(layout, env, SANDBOX_WORKSPACE).items()
        if any("\0" in name + value or "=" in name for name, value in pairs):
            raise ValueError("environment names and values cannot hold NUL, names not '='")
        return b"".join(b"--setenv\0%s\0%s\0" % (name.encode(), value.encode()) for name, value in pairs)

    def _command(
        self,
        layout: InterpreterLayout,
        fds: dict[str, int],
        workspace_dir: Path,
        env: dict[str, str],
        limits: Limits,
    ) -> list[str]:
        init = [layout.path, "-I", "-S", "-c", INIT, str(fds["report"]), layout.path, *layout.flags]
        if self.mode == "unsandboxed":
            return [*init, f"/dev/fd/{fds['code']}"]
        assert self.bwrap is not None
        command = [
            self.bwrap,
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
            "--as-pid-1",  # INIT is the namespace's init, not bwrap's reaper
            "--new-session",
            "--hostname",
            "sandbox",
            "--clearenv",
            # the environment's values from a descriptor, not the command line that
            # every user of the host can read in /proc
            "--args",
            str(fds["args"]),
        ]
        command += _system_binds()
        for prefix in layout.prefixes:
            command += ["--ro-bind", prefix, prefix]
        command += ["--proc", "/proc", "--dev", "/dev"]
        command += ["--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
        command += ["--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
        command += ["--bind", str(workspace_dir), SANDBOX_WORKSPACE]
        command += ["--perms", "0444", "--ro-bind-data", str(fds["code"]), SANDBOX_CODE_PATH]
        command += ["--remount-ro", "/", "--chdir", SANDBOX_WORKSPACE, "--json-status-fd", str(fds["status"])]
        return [*command, "--", *init, SANDBOX_CODE_PATH]

    def _run(
        self,
        code: str,
        workspace_dir: Path,
        limits: Limits,
        layout: InterpreterLayout,
        env: dict[str, str],
        identity: tuple[int, int] | None,
        on_tick: Callable[[float], None] | None,
    ) -> Outcome:
        ours: list[int] = []  # the read ends, kept
        theirs: list[int] = []  # what the child inherits, closed here once it started
        try:
            code_fd = _memfd("main.py", code.encode("utf-8", errors="surrogatepass"))
            theirs.append(code_fd)
            fds = {"code": code_fd}
            if self.mode == "bwrap":
                fds["args"] = _memfd("args", self._setenv_args(layout, env))
                theirs.append(fds["args"])
            for name in ("report", "status") if self.mode == "bwrap" else ("report",):
                read_end, write_end = os.pipe()
                ours.append(read_end)
                theirs.append(write_end)
                fds[name] = write_end
            command = self._command(layout, fds, workspace_dir, env, limits)
            nproc = limits.processes + NPROC_OVERHEAD + (0 if identity else _own_task_count())
            spawn: dict[str, object] = {}
            if identity is not None:
                spawn = {"user": identity[0], "group": identity[1], "extra_groups": []}
            if self.mode == "unsandboxed":
                child_env, cwd = self._environment(layout, env, str(workspace_dir)), str(workspace_dir)
            else:
                child_env, cwd = {"PATH": "/usr/bin:/bin"}, None
            started = time.monotonic()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=tuple(theirs),
                env=child_env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=functools.partial(_apply_limits, limits, nproc, self.nice),
                **spawn,  # type: ignore[arg-type]
            )
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        if self.mode == "bwrap":
            belongs = None
        else:
            belongs = _owned_by(identity[0]) if identity else None
        supervisor = _Supervisor(process, ours, limits, started, workspace_dir, self.mode, belongs)
        try:
            return supervisor.watch(on_tick)
        finally:
            supervisor.close()


def _memfd(name: str, data: bytes) -> int:
    """An anonymous file holding `data`, read from its start (never on a disk)."""
    fd = os.memfd_create(name)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _apply_limits(limits: Limits, nproc: int, nice: int) -> None:
    """In the child between fork and exec (after the uid switch): the rlimits every process
    of the sandbox inherits. Only calls into C: the worker has threads."""
    memory = limits.memory_bytes
    for which, value in (
        (resource.RLIMIT_AS, memory),
        # soft = hard: SIGKILL at the limit, which no handler can delay
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_NPROC, nproc),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))
    os.nice(nice)


def _kill_all_of(uid: int) -> None:
    """SIGKILL every process of `uid` (kill(-1) from a child running as that uid)."""
    kill = shutil.which("kill")
    if kill is None:
        return
    subprocess.run(
        [kill, "-s", "KILL", "--", "-1"],
        user=uid,
        group=uid,
        extra_groups=[],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )


class _Supervisor:
    def __init__(
        self,
        process: subprocess.Popen[bytes],
        fds: list[int],  # the report pipe's read end, then bwrap's status pipe's
        limits: Limits,
        started: float,
        workspace_dir: Path,
        mode: str,
        belongs: Callable[[str], bool] | None,
    ) -> None:
        self.process = process
        self.limits = limits
        self.started = started
        self.workspace_dir = workspace_dir
        self.mode = mode
        self.belongs = belongs  # which host processes are the sandbox's (bwrap: set on start)
        self.stdout = _Stream(limits.output_bytes)
        self.stderr = _Stream(limits.output_bytes)
        self.status = _Status()
        self.report = _Report()
        self.fds = fds
        self.selector = selectors.DefaultSelector()
        assert process.stdout is not None and process.stderr is not None
        self.selector.register(process.stdout, selectors.EVENT_READ, self.stdout)
        self.selector.register(process.stderr, selectors.EVENT_READ, self.stderr)
        for fd, sink in zip(fds, (self.report, self.status), strict=False):
            self.selector.register(fd, selectors.EVENT_READ, sink)
        self.limit: str | None = None
        self.killed_at: float | None = None
        self.exit: tuple[int, float] | None = None  # wait status, when
        self.init_fd: int | None = None
        self.sampled_peak_kib = 0

    def _pin_init(self) -> None:
        # A pidfd as soon as bwrap names the sandbox's init: its pid number could be
        # another process's once it is gone, a pidfd cannot.
        if self.init_fd is None and self.status.child_pid is not None:
            try:
                self.init_fd = os.pidfd_open(self.status.child_pid)
            except OSError:
                self.init_fd = -1
            if self.status.pid_namespace:
                self.belongs = _in_pid_namespace(self.status.pid_namespace)

    def kill(self, limit: str | None, *, everything: bool = False) -> None:
        """Kill the sandbox's init, which takes its PID namespace with it, and let bwrap
        reap it and exit; bwrap itself only before it named its init, or (`everything`)
        when it does not exit: killed first, bwrap would leave its child a zombie of the
        host's init, which may never reap it."""
        if self.killed_at is None:
            self.limit = limit
            self.killed_at = time.monotonic()
        self._pin_init()
        if self.init_fd is not None and self.init_fd >= 0:
            try:
                signal.pidfd_send_signal(self.init_fd, signal.SIGKILL)
            except OSError:
                pass
        else:
            everything = True
        if everything and self.exit is None:  # not reaped yet: its group is still its own
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _reap(self) -> None:
        if self.exit is None:
            pid, status = os.waitpid(self.process.pid, os.WNOHANG)
            if pid:
                self.exit = (status, time.monotonic())
                self.process.returncode = os.waitstatus_to_exitcode(status)

    def _checks(self, now: float, next_at: dict[str, float], on_tick: Callable[[float], None] | None) -> None:
        if now - self.started >= self.limits.timeout_seconds:
            self.kill(TIMEOUT)
            return
        if on_tick is not None and now >= next_at["tick"]:
            next_at["tick"] = now + TICK_SECONDS
            on_tick(now - self.started)
        if self.belongs is not None and now >= next_at["processes"]:
            next_at["processes"] = now + PROCESS_SCAN_SECONDS
            census = _census(self.belongs)
            self.sampled_peak_kib = max(self.sampled_peak_kib, census.peak_kib)
            init = 1 if self.mode == "bwrap" else 0
            if census.tasks - init > self.limits.processes:
                self.kill(PROCESSES)
                return
        if now >= next_at["workspace"]:
            next_at["workspace"] = now + WORKSPACE_SCAN_SECONDS
            used = workspace.usage(self.workspace_dir, stop_above_files=self.limits.workspace_files)
            if used.over(max_bytes=self.limits.workspace_bytes, max_files=self.limits.workspace_files):
                self.kill(WORKSPACE)

    def watch(self, on_tick: Callable[[float], None] | None) -> Outcome:
        next_at = {"tick": self.started, "processes": self.started, "workspace": self.started + 0.5}
        try:
            while True:
                self._reap()
                now = time.monotonic()
                if self.exit is not None:
                    if not self.selector.get_map() or now - self.exit[1] > DRAIN_SECONDS:
                        break
                elif self.killed_at is None:
                    self._checks(now, next_at, on_tick)
                elif now - self.killed_at > KILL_GRACE_SECONDS:
                    self.kill(self.limit, everything=True)
                for key, _ in self.selector.select(timeout=POLL_SECONDS):
                    data = os.read(key.fd, READ_BYTES)
                    if data:
                        key.data.feed(data)
                        self._pin_init()
                    else:
                        self.selector.unregister(key.fileobj)
        except BaseException:
            self.kill(None)
            self._wait_after_kill()
            raise
        return self._outcome()

    def _wait_after_kill(self) -> None:
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while self.exit is None and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.005)
        if self.exit is None:
            self.kill(self.limit, everything=True)
            _, status = os.waitpid(self.process.pid, 0)
            self.exit = (status, time.monotonic())
            self.process.returncode = os.waitstatus_to_exitcode(status)

    def _outcome(self) -> Outcome:
        assert self.exit is not None
        status, ended = self.exit
        if self.mode == "bwrap" and self.status.child_pid is None:
            reason = self.stderr.text().strip() or f"bwrap exited with {os.waitstatus_to_exitcode(status)}"
            raise SandboxUnavailable(f"the sandbox did not start: {reason}")
        reported = self.report.status
        exit_code = None if self.killed_at is not None or reported is None else _shell_status(reported)
        cpu = self.report.cpu_seconds
        limit = self.limit or self._inferred_limit(exit_code, cpu)
        return Outcome(
            stdout=self.stdout.text(),
            stderr=self.stderr.text(),
            exit_code=exit_code,
            duration_seconds=round(ended - self.started, 4),
            peak_memory_mb=round(max(self.report.peak_kib, self.sampled_peak_kib) / 1024, 1),
            limit=limit,
            cpu_seconds=round(cpu, 3),
        )

    def _inferred_limit(self, exit_code: int | None, cpu: float) -> str | None:
        """A limit the kernel enforced, read from how the program ended."""
        if exit_code is None:
            return None
        killed = exit_code in (128 + signal.SIGXCPU, 128 + signal.SIGKILL)
        if killed and cpu >= CPU_SEEN_FRACTION * self.limits.cpu_seconds:
            return CPU_TIME
        if exit_code != 0:
            ending = self.stderr.last_bytes()
            if exit_code == 128 + signal.SIGXFSZ or _FILE_TOO_LARGE.search(ending):
                return FILE_SIZE
            if _MEMORY_ERROR.search(ending):
                return MEMORY
            if _TOO_MANY_FILES.search(ending):
                return OPEN_FILES
            if _NO_PROCESS.search(ending):
                return PROCESSES
        if self.stdout.truncated or self.stderr.truncated:
            return OUTPUT
        return None

    def close(self) -> None:
        if self.exit is None:
            self.kill(self.limit)
            self._wait_after_kill()
        self.selector.close()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        for fd in self.fds:
            os.close(fd)
        if self.init_fd is not None and self.init_fd >= 0:
            os.close(self.init_fd)


def _shell_status(wait_status: int) -> int:
    """An exit status as a shell reports it: the code, or 128 + N for signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code
