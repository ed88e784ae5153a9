"""`ecr-replicate demo`: the whole workflow on this machine (loopback registries, moto), no AWS account."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.core.commandline import UsageError, add_command


def register(subparsers: Any) -> None:
    """Add the `demo` sub-command."""
    parser = add_command(
        subparsers,
        "demo",
        summary="replicate a filtered multi-arch image locally with the real state machine (no AWS account)",
        description=(
            "Starts three local registries and moto, pushes app:release-1.0.0 (two platforms) and app:dev-42, "
            "sends the ECR push events through EventBridge, runs the state machine for what matched, and checks "
            "the destinations with skopeo; then makes one destination refuse pushes (a PARTIAL run, its email "
            "and runbook link, `status`) and repairs it with `sync`; the release images are signed with a key made "
            "at start, and an unsigned one with a CRITICAL finding is blocked by the rule's gates. Exits 0 only "
            "if everything held. With --config, your own rules instead: a registry per destination, and each "
            "--push'ed (or each rule's sample) tag through EventBridge and the state machine."
        ),
        examples=[
            "ecr-replicate demo",
            "ecr-replicate demo --config replication.yaml --push app:release-1.2.0 --push app:dev-7",
        ],
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="run your own rules instead of the demo's (a registry per destination)",
    )
    parser.add_argument(
        "--push",
        action="append",
        default=[],
        metavar="REPOSITORY:TAG",
        help="with --config: a tag to push and replicate (repeatable; default one sample per rule)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo (with --config, on your rules)."""
    if args.push and not args.config:
        raise UsageError("ecr-replicate demo: --push needs --config (see ecr-replicate demo --help)")
    if args.config:
        from workflow.local.custom_demo import run_custom_demo  # moto only for this command

        return run_custom_demo(args.config, args.push)
    from workflow.local.demo import run_demo  # moto and its server are imported only for this command

    return run_demo()
