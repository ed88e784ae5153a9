"""`ecr-replicate start [--state-machine-arn ARN | --config FILE] --repository R --tag T [--source ACCOUNT/REGION]
[--destination ACCOUNT:REGION ...] [--dry-run] [--override-reason TEXT] [--wait] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3

from workflow.commands.plan import add_image_arguments
from workflow.core.commandline import (
    STATE_MACHINE_ENV,
    UsageError,
    add_command,
    add_json_argument,
    positive_float,
    state_machine_arn,
)
from workflow.models.config import load_config
from workflow.ops import executions


def register(subparsers: Any) -> None:
    """Add the `start` sub-command."""
    parser = add_command(
        subparsers,
        "start",
        summary="start a replication run (a state machine execution) by hand",
        description="Start one execution of the replication state machine for a repository and tag, as the "
        "console's 'Start execution' does (a manual input can only narrow the configured destinations). The "
        f"state machine is --state-machine-arn, else ${STATE_MACHINE_ENV}, else the `state_machine_arn` of "
        "--config. With --wait, prints the summary and exits 0 only if the run succeeded.",
        examples=[
            "ecr-replicate start --config replication.yaml --repository app --tag release-1.2.0 --wait",
            f"{STATE_MACHINE_ENV}=arn:aws:states:us-east-1:111111111111:stateMachine:Workflow ecr-replicate start "
            "--repository app --tag release-1.2.0 --destination 222222222222:eu-west-1 --dry-run",
        ],
    )
    parser.add_argument(
        "--state-machine-arn",
        help=f"the replication state machine (default ${STATE_MACHINE_ENV}, then --config's)",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="a replication config whose state_machine_arn to start"
    )
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


def _machine(args: argparse.Namespace) -> str:
    """The state machine to start, from the flag, the environment or the config."""
    configured = load_config(args.config).state_machine_arn if args.config else None
    arn = state_machine_arn(args.state_machine_arn, configured)
    if arn is None:
        raise UsageError(
            f"ecr-replicate start: no state machine: give --state-machine-arn, set ${STATE_MACHINE_ENV}, or "
            "--config with state_machine_arn (the source stack's StateMachineArn output) (see ecr-replicate start --help)"
        )
    return arn


def run(args: argparse.Namespace) -> int:
    """Start the execution; with --wait, print its summary and exit 0 only when it succeeded."""
    args.state_machine_arn = _machine(args)
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
    # The same keys with or without --wait (null until the run has ended).
    started = {"execution_arn": arn, "console": executions.link(arn)}
    if not args.json:
        print(f"started {arn}")
        print(f"console: {started['console']}")
    if not args.wait:
        if args.json:
            print(
                json.dumps(
                    {**started, "status": None, "output": None, "error": None, "cause": None}, indent=2
                )
            )
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
