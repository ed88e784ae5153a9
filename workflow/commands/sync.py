"""`ecr-replicate sync CONFIG [--repository GLOB] [--since DATE] [--dry-run] (--state-machine-arn ARN | --local)`.

Exit 0 when nothing failed (executions deferred to the next run by `--max-in-flight` are not failures), 1
when something failed, 2 on bad input. A progress bar goes to stderr when it is a terminal, plain log lines
otherwise; the final table (or `--json`) goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from workflow.config import load_config
from workflow.sync import SyncOptions, sync

BAR_WIDTH = 30


def since_argument(value: str) -> datetime:
    """Parse an ISO 8601 date or date-time; a naive value is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 date or date-time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def positive_int(value: str) -> int:
    """Parse an integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return number


class Progress:
    """A minimal progress bar on a terminal; plain log lines on anything else."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.lock = threading.Lock()
        self.drawn = False

    def update(self, phase: str, done: int, total: int) -> None:
        """Redraw the bar (terminal only)."""
        if not self.tty:
            return
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        with self.lock:
            self.stream.write(f"\r{phase:<9} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
            self.stream.flush()
            self.drawn = True

    def log(self, line: str) -> None:
        """A log line: on a terminal only failures, above the bar; elsewhere every line."""
        if self.tty and not line.startswith("failed"):
            return
        with self.lock:
            if self.drawn:
                self.stream.write("\r\033[K")
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def register(subparsers: Any) -> None:
    """Add the `sync` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sync", help="backfill: replicate existing images the rules accept and the destinations lack"
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    parser.add_argument("--repository", metavar="GLOB", help="only source repositories matching this pattern")
    parser.add_argument(
        "--since",
        type=since_argument,
        metavar="DATE",
        help="only images pushed at or after DATE (ISO 8601; ECR sources)",
    )
    parser.add_argument("--dry-run", action="store_true", help="change nothing; print what would be done")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--state-machine-arn", metavar="ARN", help="start executions of this state machine")
    mode.add_argument("--local", action="store_true", help="copy here with the copy engine instead")
    parser.add_argument(
        "--max-in-flight",
        type=positive_int,
        default=10,
        metavar="N",
        help="executions or copies at once (default 10); with --no-wait, the most RUNNING executions "
        "of the state machine this run tops up to, deferring the rest to the next run",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="start executions without waiting for them to end"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Sync and print the report."""
    config = load_config(args.config)
    options = SyncOptions(
        state_machine_arn=args.state_machine_arn,
        local=args.local,
        repository_glob=args.repository,
        since=args.since,
        dry_run=args.dry_run,
        max_in_flight=args.max_in_flight,
        wait=not args.no_wait,
    )
    progress = Progress(sys.stderr)
    try:
        report = sync(config, options, progress=progress.update, log=progress.log)
    except (ClientError, BotoCoreError) as error:
        print(f"failed: AWS: {error}", file=sys.stderr)
        return 1
    finally:
        progress.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for action in report.actions:
            if action.status == "failed":
                print(f"FAILED {action.describe()}")
            elif args.dry_run:
                print(f"would {action.describe()}")
        print(report.table())
    return 1 if report.failed else 0
