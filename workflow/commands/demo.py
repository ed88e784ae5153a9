"""`ecr-replicate demo`: the whole workflow on this machine (loopback registries, moto), no AWS account."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `demo` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="replicate a filtered multi-arch image locally with the real state machine (no AWS account)",
        description=(
            "Starts three local registries and moto, pushes app:release-1.0.0 (two platforms) and app:dev-42, "
            "sends the ECR push events through EventBridge, runs the state machine for what matched, and checks "
            "the destinations with skopeo; then makes one destination refuse pushes (a PARTIAL run, its email "
            "and runbook link, `status`) and repairs it with `sync`; the release images are signed with a key made "
            "at start, and an unsigned one with a CRITICAL finding is blocked by the rule's gates. Exits 0 only "
            "if everything held."
        ),
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from workflow.local.demo import run_demo  # moto and its server are imported only for this command

    return run_demo()
