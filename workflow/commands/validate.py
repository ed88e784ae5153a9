"""`ecr-replicate validate CONFIG [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workflow.core.commandline import add_command, add_json_argument
from workflow.core.reports import destination_dict
from workflow.models.config import load_config


def register(subparsers: Any) -> None:
    """Add the `validate` sub-command."""
    parser = add_command(
        subparsers,
        "validate",
        summary="check a replication config and summarize it",
        description="Check a replication config as `cdk synth` and the Lambda functions will check it: every "
        "problem at once, each with its path (exit 2); an unknown field names the closest known one. Prints a "
        "one-line summary, and warnings (a config that emails no one, say) on stderr.",
        examples=[
            "ecr-replicate validate replication.yaml",
            "ecr-replicate validate replication.yaml --json",
        ],
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    add_json_argument(parser, "the summary")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate the config; print a one-line summary (or its JSON form)."""
    config = load_config(args.config)
    for warning in config.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        destinations = sorted(
            {
                (d.account, region, d.repository)
                for rule in config.rules
                for d in rule.account_destinations
                for region in d.regions
            }
        )
        summary = {
            "config": args.config,
            "valid": True,
            "warnings": config.warnings(),
            "source": {"account": config.source.account, "region": config.source.region},
            "sources": [{"account": s.account, "region": s.region} for s in config.sources],
            "rules": [rule.name for rule in config.rules],
            # The destination repository is its template (`{repository}` is the source repository).
            "destinations": [destination_dict(*destination) for destination in destinations],
            # Resolved when a run plans (`ecr-replicate plan` lists the accounts, with Organizations access).
            "organization_destinations": [
                {
                    "rule": rule.name,
                    "destination": destination.selector(),
                    "exclude_accounts": destination.exclude_accounts,
                    "regions": destination.regions,
                }
                for rule in config.rules
                for destination in rule.organization_destinations
            ],
        }
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.config}: valid: {config.summary_line()}")
    return 0
