"""`ecr-replicate plan CONFIG --repository R --tag T [--destination ACCOUNT:REGION ...] [--json]`.

Organization destinations are resolved first, with the caller's credentials (AWS Organizations read access:
the management account, or the source account through the delegation policy), and listed.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import boto3

from workflow.core.commandline import add_json_argument
from workflow.models.config import ReplicationConfig, load_config
from workflow.pipeline.organizations import (
    BOTO_CONFIG,
    OrganizationDirectory,
    Resolution,
    needs_organizations,
    resolve,
)
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_manual_input

TARGET_FIELDS = {"account", "region", "repository", "tag", "rule"}


def destination_argument(value: str) -> dict[str, str]:
    """Parse `ACCOUNT:REGION` into the manual-input destination shape."""
    account, separator, region = value.partition(":")
    if not separator or not account or not region:
        raise argparse.ArgumentTypeError(f"{value!r} is not ACCOUNT:REGION")
    return {"account": account, "region": region}


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """`--repository`, `--tag` and the repeatable `--destination ACCOUNT:REGION` of a manual run."""
    parser.add_argument("--repository", required=True, help="source repository name")
    parser.add_argument("--tag", required=True, help="image tag")
    parser.add_argument(
        "--destination",
        action="append",
        type=destination_argument,
        metavar="ACCOUNT:REGION",
        help="narrow to these configured destinations (repeatable)",
    )


def register(subparsers: Any) -> None:
    """Add the `plan` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plan", help="show where an image would replicate, or why it would not"
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    add_image_arguments(parser)
    add_json_argument(parser, "the targets")
    parser.set_defaults(run=run)


def directory(config: ReplicationConfig) -> OrganizationDirectory | None:
    """An Organizations directory with the caller's credentials, when the config needs one."""
    if not needs_organizations(config):
        return None
    return OrganizationDirectory(
        boto3.client("organizations", region_name=config.source.region, config=BOTO_CONFIG)
    )


def run(args: argparse.Namespace) -> int:
    """Plan and print the targets, and what the organization destinations resolved to."""
    config = load_config(args.config)
    manual: dict[str, Any] = {"repository": args.repository, "tag": args.tag}
    if args.destination:
        manual["destinations"] = args.destination
    resolution = resolve(config, directory(config))
    result = resolution.noted(plan(parse_manual_input(manual), resolution.config))
    if args.json:
        targets = [target.model_dump(include=TARGET_FIELDS) for target in result.targets]
        organization = [
            {"rule": r.rule, "destination": r.selector, "accounts": sorted(r.accounts)}
            for r in resolution.resolved
        ]
        print(
            json.dumps(
                {
                    "targets": targets,
                    "skipped_reason": result.skipped_reason,
                    "organization": organization,
                    "skipped_accounts": [s.line() for s in resolution.skipped],
                },
                indent=2,
            )
        )
        return 0
    print_resolution(resolution)
    if not result.targets:
        print(f"nothing to replicate: {result.skipped_reason}")
        return 0
    print(f"{args.repository}:{args.tag} replicates to {len(result.targets)} destination(s):")
    for target in result.targets:
        print(f"  {target.account}/{target.region}  {target.repository}:{target.tag}  (rule {target.rule})")
    return 0


def print_resolution(resolution: Resolution) -> None:
    """The accounts each organization destination resolved to, then the accounts skipped and why."""
    for resolved in resolution.resolved:
        accounts = ", ".join(sorted(resolved.accounts)) or "none"
        print(f"rule {resolved.rule}: {resolved.selector}: {len(resolved.accounts)} account(s): {accounts}")
    for skipped in resolution.skipped:
        print(f"  skipped {skipped.line()}")
