"""`ecr-replicate pattern CONFIG [--json]`: the EventBridge event pattern compiled from the rules."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.commands.common import add_command, add_json_argument
from workflow.config import load_config
from workflow.plan import event_pattern, pattern_text


def register(subparsers: Any) -> None:
    """Add the `pattern` sub-command."""
    parser = add_command(
        subparsers,
        "pattern",
        summary="print the EventBridge event pattern compiled from the rules",
        description="Print the event pattern the source stack's EventBridge rule gets from the rules, as the "
        "compact JSON whose length EventBridge limits (2,048 characters).",
        examples=["ecr-replicate pattern replication.yaml"],
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    add_json_argument(parser, "the pattern (always JSON)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the pattern as the compact JSON whose length EventBridge limits."""
    print(pattern_text(event_pattern(load_config(args.config))))
    return 0
