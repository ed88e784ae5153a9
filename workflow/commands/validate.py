"""`ecr-replicate validate CONFIG`."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.config import load_config


def register(subparsers: Any) -> None:
    """Add the `validate` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate", help="check a replication config and summarize it"
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate the config; print a one-line summary."""
    config = load_config(args.config)
    print(f"{args.config}: valid: {config.summary_line()}")
    return 0
