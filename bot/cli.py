"""The ``data-request-bot`` command: serve, check, demo, playground, audit, evidence, purge, backup, rotate-key,
records, report.

Configuration mistakes end the program with one line per problem and no
traceback: the operator needs the name of the setting and the fix, not a stack.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.redaction import Redactor, configure_logging
from bot.settings import Settings, load_settings
from core import BackupFailed, ConfigError, DataRequestError

if TYPE_CHECKING:
    from bot.runtime import Runtime

__all__ = ["main", "start_sandboxed"]

logger = logging.getLogger("bot")
PROG = "data-request-bot"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    try:
        status = _run(argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe is handled below, not printed as a traceback
    except BrokenPipeError:
        # The reader went away (``audit | head``): stop quietly, as ``yes | head`` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return status


def _run(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Slack bot for Buy with Prime shopper data requests.")
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the bot until SIGTERM or SIGINT")
    serve.add_argument(
        "--sandbox", action="store_true", help="use the built-in Buy with Prime sandbox (no Amazon credentials)"
    )
    check = commands.add_parser("check", help="validate the configuration and reach Slack and Buy with Prime once")
    check.add_argument(
        "--sandbox", action="store_true", help="check everything but Buy with Prime (for serve --sandbox)"
    )
    commands.add_parser("demo", help="run the whole flow offline and print what staff would see in Slack")
    commands.add_parser(
        "playground", help="the real bot on the sandbox, with a local Slack channel in your browser at PORT"
    )
    audit = commands.add_parser("audit", help="export the audit log (CSV or JSON lines), emails masked")
    audit.add_argument("--since", default="1970-01-01", help="first day to include, e.g. 2026-11-01 (UTC)")
    audit.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    audit.add_argument("--reveal", action="store_true", help="show shoppers' emails in full (needs the key)")
    audit.add_argument(
        "--verify", action="store_true", help="check the log's hash chain instead: exit 1 names the first break"
    )
    audit.add_argument(
        "--expect",
        metavar="ENTRY:HASH",
        help="with --verify: an entry and hash an earlier --verify printed as newest; they must still be there",
    )
    evidence = commands.add_parser("evidence", help="everything known about one case, in one file (JSON or HTML)")
    evidence.add_argument("request", metavar="REQUEST", help="the request id, or a task id of the case")
    evidence.add_argument("--out", metavar="FILE", help="write to FILE (owner-only) instead of standard output")
    evidence.add_argument(
        "--format", choices=("json", "html"), help="json (default), or html for people (the default for a .html FILE)"
    )
    evidence.add_argument("--reveal", action="store_true", help="include the shopper's email (needs the key; audited)")
    commands.add_parser("purge", help="erase emails of requests closed or finished over RETENTION_DAYS ago")
    backup = commands.add_parser("backup", help="a consistent, verified, owner-only copy of the database")
    backup.add_argument(
        "path", metavar="PATH", help="a new file to write, or a folder (ending in /) for a time-stamped file"
    )
    commands.add_parser("rotate-key", help="re-encrypt every stored email under NEW_ENCRYPTION_KEY (bot stopped)")
    records = commands.add_parser("records", help="one row per case with the record-keeping fields, no email")
    records.add_argument("--since", help="only cases received on or after this day, e.g. 2026-01-01")
    records.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    report = commands.add_parser("report", help="the figures per kind and law for a year or a range of days")
    report.add_argument("--year", help="the calendar year of the day received (default: this year)")
    report.add_argument("--from", dest="first", help="first day received, e.g. 2026-01-01 (with --to)")
    report.add_argument("--to", dest="last", help="last day received, included, e.g. 2026-06-30")
    report.add_argument("--format", choices=("text", "csv", "json"), default="text")
    args = parser.parse_args(argv)
    sandbox = bool(getattr(args, "sandbox", False))
    if args.command == "demo":
        from offline.demo import run_demo

        return asyncio.run(run_demo(sys.stdout, start_bot=start_sandboxed))
    if args.command == "playground":
        return _playground()
    if args.command in ("audit", "evidence", "purge", "backup", "rotate-key", "records", "report"):
        return _offline_command(args)
    if args.command == "check":
        from bot.check import run_check

        return asyncio.run(run_check(os.environ, sandbox=sandbox, out=sys.stdout))
    try:
        settings = load_settings(os.environ, sandbox=sandbox)
    except ConfigError as error:
        return _refuse(error)
    redactor = configure_logging(settings.log_level, secrets=settings.secrets(), fmt=settings.log_format)
    try:
        return asyncio.run(_serve(settings, redactor))
    except DataRequestError as error:
        return _refuse(error)
    except OSError as error:  # the port is taken, the database folder is not writable, …
        print(f"{PROG}: cannot start: {error.strerror or error}", file=sys.stderr)
        return 1


async def start_sandboxed(env: Mapping[str, str]) -> Runtime:
    """Start the real bot with the sandbox, on loopback at a port the OS picks: what ``demo`` drives."""
    from bot.runtime import Runtime

    settings = load_settings(env, sandbox=True)
    redactor = configure_logging(settings.log_level, secrets=settings.secrets(), fmt=settings.log_format)
    return await Runtime.start(settings, host="127.0.0.1", redactor=redactor)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("data-request-bot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _playground() -> int:
    from bot.listener import bind
    from bot.settings import read_port
    from offline.playground import run_playground

    try:
        listening = bind("127.0.0.1", read_port(os.environ))  # this machine's browser only
    except ConfigError as error:
        return _refuse(error)

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_playground(
            os.environ, out=sys.stdout, start_bot=start_sandboxed, stop=stop, listening=listening
        )

    try:
        return asyncio.run(run())
    except DataRequestError as error:
        return _refuse(error)
    except OSError as error:  # the port is taken, …
        print(f"{PROG}: cannot start: {error.strerror or error}", file=sys.stderr)
        return 1


def _offline_command(args: argparse.Namespace) -> int:
    from bot.admin import parse_noted, parse_since, run_audit, run_backup, run_purge, run_verify
    from bot.records import ReportAsked, parse_day, run_records, run_report
    from bot.rotate import run_rotate_key

    try:
        if args.command == "backup":
            folder = args.path.endswith(("/", os.sep))  # Path() drops the slash that says "a folder"
            return run_backup(os.environ, target=Path(args.path), folder=folder, out=sys.stdout)
        if args.command == "audit" and args.verify:
            noted = parse_noted(args.expect) if args.expect else None
            return asyncio.run(run_verify(os.environ, out=sys.stdout, noted=noted))
        if args.command == "audit":
            since = parse_since(args.since)
            return asyncio.run(run_audit(os.environ, since=since, fmt=args.format, reveal=args.reveal, out=sys.stdout))
        if args.command == "evidence":
            from bot.evidence import run_evidence

            target = Path(args.out) if args.out else None
            return asyncio.run(
                run_evidence(
                    os.environ,
                    ref=args.request,
                    fmt=args.format,
                    target=target,
                    reveal=args.reveal,
                    out=sys.stdout,
                    err=sys.stderr,
                )
            )
        if args.command == "records":
            first = None if args.since is None else parse_day(args.since, option="--since")
            return asyncio.run(run_records(os.environ, since=first, fmt=args.format, out=sys.stdout))
        if args.command == "report":
            asked = ReportAsked(year=args.year, first=args.first, last=args.last)
            return asyncio.run(run_report(os.environ, asked=asked, fmt=args.format, out=sys.stdout, now=time.time()))
        if args.command == "rotate-key":
            return asyncio.run(run_rotate_key(os.environ, out=sys.stdout))
        return asyncio.run(run_purge(os.environ, out=sys.stdout))
    except ConfigError as error:
        return _refuse(error)
    except BackupFailed as error:
        print(f"{PROG}: backup failed, nothing was written: {error}", file=sys.stderr)
        return 1


def _refuse(error: DataRequestError) -> int:
    """Exit status 2, one line per problem on stderr, each under the program's name; no traceback."""
    for line in str(error).splitlines():
        print(f"{PROG}: {line}", file=sys.stderr)
    return 2


async def _serve(settings: Settings, redactor: Redactor) -> int:
    from bot.runtime import Runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before starting: a SIGTERM during start-up still stops cleanly
        loop.add_signal_handler(sig, stop.set)
    runtime = await Runtime.start(settings, redactor=redactor)
    # Everything start-up built lives as long as the process: keep it out of the collector's way, so a
    # full collection under load scans only what requests create (a pause in the tail otherwise). The
    # process's owner decides this, not Runtime.start: tests and the demo leave their interpreter alone.
    # The figures are in benchmarks/README.md ("gc_freeze").
    gc.collect()
    gc.freeze()
    await stop.wait()
    logger.info("stopping")
    await runtime.stop()
    return 0
