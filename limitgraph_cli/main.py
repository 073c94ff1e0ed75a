"""`limitgraph`: the platform from a shell.

Every command takes --json (machine-readable output on stdout; messages stay on stderr) and
exits with a code from limitgraph_cli.errors.ExitCode, listed in `limitgraph --help`.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from limitgraph_cli import __version__
from limitgraph_cli.bundle import verify_bundle
from limitgraph_cli.client import Api
from limitgraph_cli.config import (
    Credentials,
    config_path,
    load_config,
    normalise_url,
    resolve_credentials,
    save_config,
)
from limitgraph_cli.errors import CliError, ExitCode
from limitgraph_cli.follow import FINAL_STATUSES, follow_run

EXIT_CODES_HELP = """exit codes:
  0    ok
  2    usage: a bad command line, or a file (payload, bundle) that cannot be read or parsed
  3    auth: not logged in, key refused (401), or the role is missing (403)
  4    not found: no such run, trace, session or artifact (or not yours)
  5    refused: the API said no (invalid input, conflict, too large, rate limited)
  6    run failed: it ended failed, dead or cancelled
  7    held: the run is blocked, or its result withheld, by governance
  8    unavailable: the server cannot be reached, timed out or failed (5xx)
  9    verification failed: a bundle or a download does not match its SHA-256
  10   not finished: the run is still going (--timeout passed, or no result yet)
  130  interrupted (Ctrl-C)

environment: LIMITGRAPH_URL, LIMITGRAPH_API_KEY and LIMITGRAPH_SESSION work instead of
`limitgraph login` (the config file is ~/.config/limitgraph/config.json, or $LIMITGRAPH_CONFIG).
"""
DEFAULT_SESSION_NAME = "cli"
STREAM_CHUNK_BYTES = 64 * 1024
FAILED_STATUSES = {"failed", "dead", "cancelled"}
RUN_STATUSES = ("pending", "queued", "running", "succeeded", "failed", "cancelled", "held", "blocked", "dead")


class Output:
    """stdout for results (JSON with --json), stderr for everything said to a person."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        # Piped output gets a wide fixed width, so ids in tables are never cut.
        self.out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
        self.err = Console(stderr=True, highlight=False)

    def json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def say(self, message: str) -> None:
        self.err.print(message, markup=False)

    def line(self, message: str) -> None:
        self.out.print(message, markup=False, soft_wrap=True)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        table = Table(*columns, box=None, pad_edge=False)
        for row in rows:
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        self.out.print(table)


# --- helpers --------------------------------------------------------------------------------


def _api(args: argparse.Namespace) -> tuple[Api, Credentials]:
    credentials = resolve_credentials(args.url)
    return Api(credentials.url, credentials.api_key), credentials


def _read_payload(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CliError(f"cannot read the payload {source}: {exc.strerror}", ExitCode.USAGE) from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"the payload {source} is not JSON: {exc}", ExitCode.USAGE) from exc


def _percent(progress: Any) -> str:
    return f"{float(progress or 0) * 100:.0f}%"


def _run_summary(out: Output, run: dict[str, Any]) -> None:
    out.line(f"run       {run['id']}  ({run['kind']})")
    out.line(f"status    {run['status']}  {_percent(run.get('progress'))}")
    out.line(f"session   {run['session']}")
    if run.get("trace"):
        out.line(f"trace     {run['trace']}")
    for field in ("created_at", "started_at", "finished_at"):
        if run.get(field):
            out.line(f"{field.removesuffix('_at'):<9} {run[field]}")
    if run.get("duration_seconds") is not None:
        out.line(f"duration  {run['duration_seconds']:.3f} s")
    if run.get("hold_reason"):
        out.line(f"held      {run['hold_reason']}")
    if run.get("error"):
        error = run["error"]
        out.line(f"error     {error.get('type', '')}: {error.get('message', '')}")
    if run.get("result_withheld"):
        out.line("result    withheld for review")
    elif run.get("result") is not None:
        text = json.dumps(run["result"], ensure_ascii=False)
        if len(text) > 400:
            text = f"{text[:400]}… (all of it: limitgraph result {run['id']})"
        out.line(f"result    {text}")


def _run_exit(run: dict[str, Any]) -> ExitCode:
    if run["status"] in FAILED_STATUSES:
        return ExitCode.RUN_FAILED
    if run["status"] == "blocked" or run.get("result_withheld"):
        return ExitCode.HELD
    return ExitCode.OK


def _session_for_submit(api: Api, credentials: Credentials, given: str | None, out: Output) -> str:
    if given:
        return given
    if credentials.session:
        return credentials.session
    session = api.request("POST", "/api/v1/sessions", json={"name": DEFAULT_SESSION_NAME})
    if credentials.from_config:
        save_config({**load_config(), "session": session["id"]})
        out.say(f"created session {session['id']} ({DEFAULT_SESSION_NAME}), your default from now on")
    else:
        out.say(f"created session {session['id']}; set LIMITGRAPH_SESSION={session['id']} to reuse it")
    return session["id"]


def _ask_to_cancel(api: Api, run_id: str, out: Output) -> int:
    """After Ctrl-C while following: cancel the run, or leave it running."""
    out.err.print(f"\nCancel run {run_id}? [y/N] ", end="", markup=False)
    try:
        answer = input() if sys.stdin.isatty() else sys.stdin.readline()
    except (EOFError, KeyboardInterrupt):
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        run = api.request("POST", f"/api/v1/runs/{run_id}/cancel")
        out.say(f"cancel requested: run {run_id} is {run['status']}")
        if out.as_json:
            out.json(run)
    else:
        out.say(f"left running; follow it again with: limitgraph status {run_id} --follow")
    return ExitCode.INTERRUPTED


def _follow(api: Api, run: dict[str, Any], out: Output, timeout: float | None) -> int:
    """Follow with a progress bar (a status line per change when stderr is not a terminal),
    then print the run as it ended; Ctrl-C asks whether to cancel it."""
    run_id = run["id"]
    label = f"{run['kind']} {run_id[:8]}"
    interactive = out.err.is_terminal
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=out.err,
        disable=not interactive,
    )
    task = bar.add_task(f"{label} {run['status']}", total=1.0, completed=float(run.get("progress") or 0))
    seen = {"status": None}

    def update(state: dict[str, Any]) -> None:
        bar.update(
            task, completed=float(state.get("progress") or 0), description=f"{label} {state['status']}"
        )
        if not interactive and state["status"] != seen["status"]:
            out.say(f"{run_id}: {state['status']} {_percent(state.get('progress'))}")
        seen["status"] = state["status"]

    try:
        with bar:
            follow_run(api, run_id, update, timeout=timeout)
    except KeyboardInterrupt:
        return _ask_to_cancel(api, run_id, out)
    final = api.request("GET", f"/api/v1/runs/{run_id}")
    if out.as_json:
        out.json(final)
    else:
        _run_summary(out, final)
    if final["status"] == "blocked":
        out.say(f"run {run_id} is blocked by governance: {final.get('hold_reason') or 'see its flags'}")
    return _run_exit(final)


def _safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.split("/")[-1].split("\\")[-1]).strip("._")
    return cleaned or "limitgraph-export"


def _filename_from(disposition: str, fallback: str) -> str:
    match = re.search(r'filename="?([^";]+)"?', disposition or "")
    return _safe_filename(match.group(1)) if match else fallback


def _write_stream(chunks: Callable[[], Any], target: Path) -> tuple[int, str]:
    """Write streamed bytes to `target` through a temporary file; (size, SHA-256)."""
    partial = target.with_name(f".{target.name}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as handle:
            for chunk in chunks():
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def _list(api: Api, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    page = api.request("GET", path, params=params)
    return page["results"] if isinstance(page, dict) and "results" in page else page


# --- commands ------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, out: Output) -> int:
    url = normalise_url(args.url or os.environ.get("LIMITGRAPH_URL") or load_config().get("url") or "")
    key = args.api_key
    if key in (None, "-"):
        if key is None and sys.stdin.isatty():
            key = getpass.getpass("API key (input hidden): ")
        else:
            key = sys.stdin.readline()
    key = (key or "").strip()
    if not key:
        raise CliError("no API key given (--api-key KEY, or on standard input)", ExitCode.USAGE)
    api = Api(url, key)
    try:
        api.request("GET", "/api/v1/sessions", params={"limit": 1})  # the key must work before it is kept
    finally:
        api.close()
    config = {**load_config(), "url": url, "api_key": key}
    if args.session:
        config["session"] = args.session
    path = save_config(config)
    if out.as_json:
        out.json({"url": url, "config": str(path)})
    else:
        out.say(f"logged in to {url}; credentials saved in {path} (mode 600)")
    return ExitCode.OK


def cmd_submit(args: argparse.Namespace, out: Output) -> int:
    payload = _read_payload(args.payload)
    api, credentials = _api(args)
    session = _session_for_submit(api, credentials, args.session, out)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    run = api.request(
        "POST",
        "/api/v1/runs",
        json={"session": session, "kind": args.kind, "payload": payload, "priority": args.priority},
        headers=headers,
    )
    if args.follow and run["status"] not in FINAL_STATUSES and run["status"] != "blocked":
        return _follow(api, run, out, args.timeout)
    if out.as_json:
        out.json(run)
    else:
        _run_summary(out, run)
    if run["status"] == "blocked":
        out.say(f"run {run['id']} is blocked by governance: {run.get('hold_reason') or 'see its flags'}")
    return _run_exit(run) if args.follow or run["status"] == "blocked" else ExitCode.OK


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    api, _ = _api(args)
    run = api.request("GET", f"/api/v1/runs/{args.run}")
    if args.follow and run["status"] not in FINAL_STATUSES and run["status"] != "blocked":
        return _follow(api, run, out, args.timeout)
    if out.as_json:
        out.json(run)
    else:
        _run_summary(out, run)
    return _run_exit(run) if args.follow else ExitCode.OK


def _pick_artifact(artifacts: list[dict[str, Any]], wanted: str | None, run_id: str) -> dict[str, Any] | None:
    if wanted:
        for artifact in artifacts:
            if wanted in (artifact["id"], artifact["name"]):
                return artifact
        raise CliError(f"run {run_id} has no artifact {wanted!r}", ExitCode.NOT_FOUND)
    if len(artifacts) > 1:
        names = ", ".join(f"{a['name']} ({a['id']})" for a in artifacts)
        raise CliError(
            f"run {run_id} has {len(artifacts)} artifacts; pick one with --artifact: {names}", ExitCode.USAGE
        )
    return artifacts[0] if artifacts else None


def cmd_result(args: argparse.Namespace, out: Output) -> int:
    api, _ = _api(args)
    run = api.request("GET", f"/api/v1/runs/{args.run}")
    status = run["status"]
    if status in FAILED_STATUSES:
        error = run.get("error") or {}
        raise CliError(
            f"run {args.run} {status}: {error.get('type', '')} {error.get('message', '')}".rstrip(),
            ExitCode.RUN_FAILED,
            {"run": run},
        )
    if status == "blocked" or run.get("result_withheld"):
        reason = run.get("hold_reason") or "see its flags"
        raise CliError(f"run {args.run} is held by governance: {reason}", ExitCode.HELD, {"run": run})
    if status != "succeeded":
        raise CliError(f"run {args.run} is {status}: no result yet", ExitCode.NOT_FINISHED, {"run": run})
    if not args.output:
        if args.artifact:
            raise CliError("--artifact needs --output FILE", ExitCode.USAGE)
        out.json(run["result"])
        return ExitCode.OK
    target = Path(args.output)
    artifacts = _list(api, "/api/v1/artifacts", {"run": args.run, "limit": 500})
    artifact = _pick_artifact(artifacts, args.artifact, args.run)
    if artifact is None:
        target.write_text(json.dumps(run["result"], indent=2, ensure_ascii=False) + "\n")
        saved = {"run": args.run, "file": str(target), "artifact": None}
    else:

        def chunks() -> Any:
            with api.stream("GET", f"/api/v1/artifacts/{artifact['id']}/download") as response:
                yield from response.iter_bytes(STREAM_CHUNK_BYTES)

        size, sha256 = _write_stream(chunks, target)
        if sha256 != artifact["sha256"] or size != artifact["size"]:
            raise CliError(
                f"{target}: the download does not match artifact {artifact['id']}'s SHA-256",
                ExitCode.VERIFY_FAILED,
            )
        saved = {
            "run": args.run,
            "file": str(target),
            "artifact": artifact["id"],
            "size": size,
            "sha256": sha256,
        }
    if out.as_json:
        out.json(saved)
    else:
        what = f"artifact {artifact['name']}" if artifact else "the result (JSON)"
        out.say(f"saved {what} to {target}")
    return ExitCode.OK


def cmd_cancel(args: argparse.Namespace, out: Output) -> int:
    api, _ = _api(args)
    run = api.request("POST", f"/api/v1/runs/{args.run}/cancel")
    if out.as_json:
        out.json(run)
    else:
        out.say(
            f"run {run['id']}: {run['status']}"
            + (" (cancel requested)" if run.get("cancel_requested") else "")
        )
    return ExitCode.OK


def cmd_ls(args: argparse.Namespace, out: Output) -> int:
    api, _ = _api(args)
    params = {"session": args.session, "status": args.status, "kind": args.kind, "limit": args.limit}
    runs = _list(api, "/api/v1/runs", params)
    if out.as_json:
        out.json(runs)
        return ExitCode.OK
    rows = [
        (
            run["id"],
            run["kind"],
            run["status"],
            _percent(run.get("progress")),
            run["created_at"][:19].replace("T", " "),
            "" if run.get("duration_seconds") is None else f"{run['duration_seconds']:.2f}",
        )
        for run in runs
    ]
    out.table(("run", "kind", "status", "progress", "created (UTC)", "seconds"), rows)
    return ExitCode.OK


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    api, _ = _api(args)
    scope = next((name, getattr(args, name)) for name in ("run", "trace", "session") if getattr(args, name))
    body: dict[str, Any] = {scope[0]: scope[1], "format": args.format}
    if args.table:
        body["table"] = args.table
    with api.stream("POST", "/api/v1/artifacts/export", json=body) as response:
        if args.output == "-" or (args.output is None and args.format != "bundle"):
            for chunk in response.iter_bytes(STREAM_CHUNK_BYTES):
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return ExitCode.OK
        fallback = f"limitgraph-{scope[0]}-{scope[1]}.zip"
        target = Path(
            args.output or _filename_from(response.headers.get("content-disposition", ""), fallback)
        )
        size, sha256 = _write_stream(lambda: response.iter_bytes(STREAM_CHUNK_BYTES), target)
    if out.as_json:
        out.json({"file": str(target), "format": args.format, "size": size, "sha256": sha256})
    else:
        out.say(f"saved the {args.format} export of {scope[0]} {scope[1]} to {target} ({size} bytes)")
    return ExitCode.OK


def cmd_flags(args: argparse.Namespace, out: Output) -> int:
    api, _ = _api(args)
    if args.queue:
        params = {
            "state": args.state,
            "flag": args.flag,
            "band": args.band,
            "session": args.session,
            "limit": args.limit,
        }
        reviews = _list(api, "/api/v1/governance/queue", params)
        if out.as_json:
            out.json(reviews)
        else:
            rows = [
                (
                    r["trace"],
                    r["run"],
                    r["run_status"],
                    r["state"],
                    r["severity"],
                    r["reason"],
                    r["opened_at"][:19],
                )
                for r in reviews
            ]
            out.table(("trace", "run", "run status", "state", "severity", "reason", "opened"), rows)
        return ExitCode.OK
    if not args.trace:
        raise CliError("give a trace id, or --queue for the review queue (reviewers)", ExitCode.USAGE)
    flags = _list(api, f"/api/v1/traces/{args.trace}/flags", {"limit": args.limit})
    if out.as_json:
        out.json(flags)
    else:
        rows = [
            (
                f["flag"],
                f["severity"],
                f["state"],
                f["source"],
                f["detector"],
                f["reason"],
                f["created_at"][:19],
            )
            for f in flags
        ]
        out.table(("flag", "severity", "state", "source", "detector", "reason", "raised"), rows)
    return ExitCode.OK


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    try:
        report = verify_bundle(args.file)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}", ExitCode.USAGE) from exc
    if out.as_json:
        out.json(report.as_json())
    else:
        for line in report.lines():
            (out.line if report.valid else out.say)(line)
    return ExitCode.OK if report.valid else ExitCode.VERIFY_FAILED


# --- the parser -----------------------------------------------------------------------------


def _common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before or after the command; a subcommand's copy must not reset the top's value.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--json", action="store_true", default=False if top else argparse.SUPPRESS, help="JSON on stdout"
    )
    parser.add_argument(
        "--url", default=default, help="the server (default: LIMITGRAPH_URL, then the config)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="limitgraph",
        description="Submit, follow and export limitgraph runs.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"limitgraph {__version__}")
    _common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common_options(sub, top=False)
        sub.set_defaults(handler=handler)
        return sub

    login = command("login", cmd_login, f"store the server's URL and your API key in {config_path()}")
    login.add_argument("--api-key", help="the key (default: read from standard input, or asked for)")
    login.add_argument("--session", help="a default session for submit")

    submit = command("submit", cmd_submit, "submit a run")
    submit.add_argument("kind", help="the run kind: echo, sleep, fgw, fgw_batch, rd_sweep, ...")
    submit.add_argument(
        "--payload", required=True, metavar="FILE|-", help="the payload as JSON: a file or - for stdin"
    )
    submit.add_argument(
        "--session", help="the session (default: LIMITGRAPH_SESSION, the config, else a new 'cli' one)"
    )
    submit.add_argument("--priority", type=int, default=0, help="0..9, higher runs first")
    submit.add_argument("--idempotency-key", help="the same key submits once, however often it is sent")
    submit.add_argument(
        "--follow", action="store_true", help="show progress until the run ends; exit by its status"
    )
    submit.add_argument(
        "--timeout", type=float, help="with --follow: give up waiting after this many seconds"
    )

    status = command("status", cmd_status, "show a run's status")
    status.add_argument("run")
    status.add_argument(
        "--follow", action="store_true", help="show progress until the run ends; exit by its status"
    )
    status.add_argument(
        "--timeout", type=float, help="with --follow: give up waiting after this many seconds"
    )

    result = command(
        "result", cmd_result, "print a run's result (JSON), or save it or its artifact to a file"
    )
    result.add_argument("run")
    result.add_argument(
        "--output", "-o", metavar="FILE", help="save the run's artifact (or its JSON result) here"
    )
    result.add_argument("--artifact", metavar="ID|NAME", help="which artifact, when the run has several")

    cancel = command("cancel", cmd_cancel, "cancel a run")
    cancel.add_argument("run")

    ls = command("ls", cmd_ls, "list your runs, newest first")
    ls.add_argument("--session")
    ls.add_argument("--status", choices=RUN_STATUSES)
    ls.add_argument("--kind")
    ls.add_argument("--limit", type=int, default=20, help="at most this many (default 20, up to 500)")

    export = command("export", cmd_export, "export a run, trace or session")
    scope = export.add_mutually_exclusive_group(required=True)
    scope.add_argument("--run")
    scope.add_argument("--trace")
    scope.add_argument("--session")
    export.add_argument("--format", choices=("json", "csv", "markdown", "bundle"), default="json")
    export.add_argument("--table", choices=("runs", "rd_points"), help="csv: one row per run or per RD point")
    export.add_argument(
        "--output",
        "-o",
        metavar="FILE|-",
        help="where to write (default: stdout; a bundle: its own file name here)",
    )

    flags = command("flags", cmd_flags, "a trace's governance flags, or the review queue (reviewers)")
    flags.add_argument("trace", nargs="?")
    flags.add_argument("--queue", action="store_true", help="the review queue instead (reviewers and admins)")
    flags.add_argument("--state", help="queue: quarantined, pending, released, rejected")
    flags.add_argument("--flag", help="queue: a flag type")
    flags.add_argument("--band", choices=("low", "medium", "high", "critical"), help="queue: a severity band")
    flags.add_argument("--session", help="queue: one session's")
    flags.add_argument("--limit", type=int, default=50)

    verify = command("verify", cmd_verify, "check an export bundle offline (files and provenance chains)")
    verify.add_argument("file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(args.json)
    try:
        return int(args.handler(args, out))
    except CliError as error:
        if out.as_json:
            body = {"error": {"message": error.message}, **(error.body or {}), "exit_code": int(error.code)}
            sys.stderr.write(json.dumps(body, ensure_ascii=False) + "\n")
        else:
            out.say(f"limitgraph: {error.message}")
        return int(error.code)
    except KeyboardInterrupt:
        out.say("interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # `limitgraph export ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return int(ExitCode.OK)
