"""`ecr-replicate start --state-machine-arn ARN --repository R --tag T [--source ACCOUNT/REGION]
[--destination ACCOUNT:REGION ...] [--dry-run] [--override-reason TEXT] [--wait] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3

from workflow.commands.plan import add_image_arguments
from workflow.core.commandline import add_json_argument, positive_float
from workflow.ops import executions


def register(subparsers: Any) -> None:
    """Add the `start` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "start", help="start a replication run (a state machine execution) by hand"
    )
    parser.add_argument("--state-machine-arn", required=True, help="the replication state machine")
    add_image_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="plan and precheck only; copy nothing")
    parser.add_argument("--name", help="execution name (default: generated)")
    parser.add_argument(
        "--override-reason",
        metavar="TEXT",
        help="break-glass: let the image past the promotion gates of rules with allow_override: true; "
        "the reason and your caller identity (sts:GetCallerIdentity) go into the input and the summary",
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait for the end, print the summary, exit 1 unless it succeeded"
    )
    parser.add_argument(
        "--poll-seconds", type=positive_float, default=executions.DEFAULT_POLL_SECONDS, help=argparse.SUPPRESS
    )
    add_json_argument(parser, "the execution (and, with --wait, how it ended)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Start the execution; with --wait, print its summary and exit 0 only when it succeeded."""
    region = executions.region_of(args.state_machine_arn)
    requested_by = None
    if args.override_reason is not None:
        # Who asks, as this caller's credentials say: recorded in the input (CloudTrail has it too).
        requested_by = boto3.client("sts", region_name=region).get_caller_identity()["Arn"]
    payload = executions.manual_input(
        args.repository,
        args.tag,
        destinations=args.destination,
        dry_run=args.dry_run,
        override_reason=args.override_reason,
        requested_by=requested_by,
        source=args.source,
    )
    client = boto3.client("stepfunctions", region_name=region)
    arn = executions.start(client, args.state_machine_arn, payload, name=args.name)
    started = {"executionArn": arn, "console": executions.link(arn)}
    if not args.json:
        print(f"started {arn}")
        print(f"console: {started['console']}")
    if not args.wait:
        if args.json:
            print(json.dumps(started, indent=2))
        return 0
    sys.stdout.flush()
    report = executions.wait(client, arn, poll_seconds=args.poll_seconds)
    if args.json:
        ended = {
            "status": report.status,
            "output": report.output,
            "error": report.error,
            "cause": report.cause,
        }
        print(json.dumps({**started, **ended}, indent=2))
    else:
        print(report.text(), end="")
    return 0 if report.succeeded else 1
