"""`ecr-replicate validate CONFIG [--json]`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workflow.core.commandline import add_json_argument
from workflow.models.config import load_config


def register(subparsers: Any) -> None:
    """Add the `validate` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate", help="check a replication config and summarize it"
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    add_json_argument(parser, "the summary")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate the config; print a one-line summary (or its JSON form)."""
    config = load_config(args.config)
    if args.json:
        destinations = sorted(
            {(d.account, region) for rule in config.rules for d in rule.destinations for region in d.regions}
        )
        summary = {
            "config": args.config,
            "valid": True,
            "source": {"account": config.source.account, "region": config.source.region},
            "sources": [{"account": s.account, "region": s.region} for s in config.sources],
            "rules": [rule.name for rule in config.rules],
            "destinations": [{"account": account, "region": region} for account, region in destinations],
        }
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.config}: valid: {config.summary_line()}")
    return 0
