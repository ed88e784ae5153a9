"""`ecr-replicate plan CONFIG --repository R --tag T [--source ACCOUNT/REGION] [--destination ACCOUNT:REGION ...]
[--json]`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workflow.core.commandline import add_json_argument
from workflow.models.config import load_config
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_manual_input

TARGET_FIELDS = {"account", "region", "repository", "tag", "rule", "source"}


def destination_argument(value: str) -> dict[str, str]:
    """Parse `ACCOUNT:REGION` into the manual-input destination shape."""
    account, separator, region = value.partition(":")
    if not separator or not account or not region:
        raise argparse.ArgumentTypeError(f"{value!r} is not ACCOUNT:REGION")
    return {"account": account, "region": region}


def source_argument(value: str) -> dict[str, str]:
    """Parse `ACCOUNT/REGION` (how sources are named) into the manual-input source shape."""
    account, separator, region = value.partition("/")
    if not separator or not account or not region:
        raise argparse.ArgumentTypeError(f"{value!r} is not ACCOUNT/REGION")
    return {"account": account, "region": region}


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """`--repository`, `--tag`, `--source ACCOUNT/REGION` and the repeatable `--destination ACCOUNT:REGION` of a
    manual run."""
    parser.add_argument("--repository", required=True, help="source repository name")
    parser.add_argument("--tag", required=True, help="image tag")
    parser.add_argument(
        "--source",
        type=source_argument,
        metavar="ACCOUNT/REGION",
        help="the source the image is in (needed when several sources' rules select the repository)",
    )
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


def run(args: argparse.Namespace) -> int:
    """Plan and print the targets."""
    config = load_config(args.config)
    manual: dict[str, Any] = {"repository": args.repository, "tag": args.tag}
    if args.destination:
        manual["destinations"] = args.destination
    if args.source:
        manual["source"] = args.source
    result = plan(parse_manual_input(manual), config)
    if args.json:
        targets = [target.model_dump(include=TARGET_FIELDS) for target in result.targets]
        print(json.dumps({"targets": targets, "skipped_reason": result.skipped_reason}, indent=2))
        return 0
    if not result.targets:
        print(f"nothing to replicate: {result.skipped_reason}")
        return 0
    origin = f" from {result.source}" if len(config.sources) > 1 else ""
    print(f"{args.repository}:{args.tag}{origin} replicates to {len(result.targets)} destination(s):")
    for target in result.targets:
        print(f"  {target.account}/{target.region}  {target.repository}:{target.tag}  (rule {target.rule})")
    return 0
