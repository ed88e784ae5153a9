"""`ecr-replicate sync CONFIG [--repository GLOB] [--source ACCOUNT/REGION] [--since DATE] [--dry-run] [--apply-deletes]
[--state-machine-arn ARN | --local]`.

The state machine is --state-machine-arn, else $ECR_REPLICATE_STATE_MACHINE_ARN, else the config's
`state_machine_arn`.

Exit 0 when nothing failed (executions deferred to the next run by `--max-in-flight` are not failures, nor
source images in ECR's archive storage class, reported as archived and not copied until restored), 1 when
something failed, 2 on bad input. A progress bar goes to stderr when it is a terminal, plain log lines
otherwise; the final table (or `--json`) goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from workflow.core.commandline import (
    STATE_MACHINE_ENV,
    UsageError,
    add_command,
    add_json_argument,
    positive_int,
    state_machine_arn,
)
from workflow.engine.progress import SyncProgress
from workflow.models.config import load_config
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync


def since_argument(value: str) -> datetime:
    """Parse an ISO 8601 date or date-time; a naive value is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 date or date-time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(subparsers: Any) -> None:
    """Add the `sync` sub-command."""
    parser = add_command(
        subparsers,
        "sync",
        summary="backfill: replicate existing images the rules accept and the destinations lack",
        description="List the source's images the rules accept, read each destination once per repository, "
        "and start one execution per image for exactly the destinations that lack it (--local: copy here "
        "instead). --dry-run changes nothing and says what would be done, naming the digest a repair would "
        f"replace. The state machine is --state-machine-arn, else ${STATE_MACHINE_ENV}, else the config's "
        "state_machine_arn. With `operators` in the config the destinations are read through their read-only "
        "role and every write is left to an execution.",
        examples=[
            "ecr-replicate sync replication.yaml --dry-run",
            "ecr-replicate sync replication.yaml --repository 'services/*' --since 2026-01-01 --no-wait --json",
        ],
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    parser.add_argument("--repository", metavar="GLOB", help="only source repositories matching this pattern")
    parser.add_argument(
        "--source",
        metavar="ACCOUNT/REGION",
        help="only this source of a config with several (default: every source)",
    )
    parser.add_argument(
        "--since",
        type=since_argument,
        metavar="DATE",
        help="only images pushed at or after DATE (ISO 8601; ECR sources)",
    )
    parser.add_argument("--dry-run", action="store_true", help="change nothing; print what would be done")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--state-machine-arn",
        metavar="ARN",
        help=f"start executions of this state machine (default ${STATE_MACHINE_ENV}, then the config's)",
    )
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
    parser.add_argument(
        "--apply-deletes",
        action="store_true",
        help="remove the tags of rules with propagate_deletes that the source no longer has (reported "
        "either way), only where they still point at the listed digest",
    )
    add_json_argument(parser, "the report")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Sync and print the report."""
    config = load_config(args.config)
    machine = None if args.local else state_machine_arn(args.state_machine_arn, config.state_machine_arn)
    if machine is None and not args.local:
        raise UsageError(
            f"ecr-replicate sync: no state machine: give --state-machine-arn, set ${STATE_MACHINE_ENV}, put "
            "state_machine_arn in the config, or --local to copy here (see ecr-replicate sync --help)"
        )
    options = SyncOptions(
        state_machine_arn=machine,
        local=args.local,
        repository_glob=args.repository,
        source=args.source,
        since=args.since,
        dry_run=args.dry_run,
        max_in_flight=args.max_in_flight,
        wait=not args.no_wait,
        apply_deletes=args.apply_deletes,
        # A person runs this: with `operators` in the config, read through the read-only roles and leave
        # every write to an execution (`--local` copies with the caller's own access instead).
        as_operator=config.operators is not None,
    )
    progress = SyncProgress(sys.stderr)
    try:
        report = sync(config, options, progress=progress.update, log=progress.log)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for action in report.actions:
            if action.status == "failed":
                print(f"FAILED {action.describe()}")
            elif action.kind == "archived":
                print(f"archived {action.describe()}")
            elif args.dry_run and (action.kind != "delete" or args.apply_deletes):
                print(f"would {action.describe()}")
            elif action.kind == "delete" and action.status == "planned":
                print(f"stale {action.describe()} (--apply-deletes removes it)")
            elif action.kind == "delete":
                print(action.describe())
        print(report.table())
    return 1 if report.failed else 0
