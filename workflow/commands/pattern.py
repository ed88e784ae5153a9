"""`ecr-replicate pattern CONFIG [--json]`: the EventBridge event pattern compiled from the rules."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.core.commandline import add_json_argument
from workflow.models.config import load_config
from workflow.pipeline.plan import event_pattern, pattern_text


def register(subparsers: Any) -> None:
    """Add the `pattern` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pattern", help="print the EventBridge event pattern compiled from the rules"
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    add_json_argument(parser, "the pattern (always JSON)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the pattern as the compact JSON whose length EventBridge limits."""
    print(pattern_text(event_pattern(load_config(args.config))))
    return 0
