"""`ecr-replicate plan CONFIG --repository R (--tag T | --tags-file FILE) [--source ACCOUNT/REGION]
[--destination ACCOUNT:REGION ...] [--json]`.

Organization destinations are resolved first, with the caller's credentials (AWS Organizations read access:
the management account, or the source account through the delegation policy), and listed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3

from workflow.core.commandline import UsageError, add_command, add_json_argument
from workflow.core.exceptions import InvalidRequest
from workflow.core.grammar import cut, tag_problem
from workflow.core.reports import destination_dict
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

MAX_TAGS = 100_000  # a tags file is read whole: bounded


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


def add_image_arguments(parser: argparse.ArgumentParser, *, tag_required: bool = True) -> None:
    """`--repository`, `--tag`, `--source ACCOUNT/REGION` and the repeatable `--destination ACCOUNT:REGION` of a
    manual run."""
    parser.add_argument("--repository", required=True, help="source repository name")
    parser.add_argument("--tag", required=tag_required, help="image tag")
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
    parser = add_command(
        subparsers,
        "plan",
        summary="show where an image would replicate, or why it would not",
        description="Apply the rules to a repository and tag exactly as the Plan state does: the destinations "
        "it would replicate to (with the rule that selects each), or why nothing replicates. With --tags-file, "
        "every tag of a file (one per line, e.g. `aws ecr list-images ... --query 'imageIds[].imageTag'` "
        "output): test your rules on your real tags before you deploy them. Reads no AWS account, except AWS "
        "Organizations (with your credentials) to list the accounts of organization destinations.",
        examples=[
            "ecr-replicate plan replication.yaml --repository app --tag release-1.2.0",
            "aws ecr list-images --repository-name app --query 'imageIds[].imageTag' --output text "
            "| tr '\\t' '\\n' > tags.txt",
            "ecr-replicate plan replication.yaml --repository app --tags-file tags.txt",
        ],
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    add_image_arguments(parser, tag_required=False)
    parser.add_argument(
        "--tags-file",
        metavar="FILE",
        help="plan every tag in FILE (one per line; blank lines and # comments skipped)",
    )
    add_json_argument(parser, "the targets")
    parser.set_defaults(run=run)


def read_tags(path: str) -> list[str]:
    """The tags of a file, one per line; InvalidRequest naming the first bad line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidRequest(
            f"--tags-file {path}: cannot read: {getattr(error, 'strerror', None) or error}"
        ) from None
    tags: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        tag = line.strip()
        if not tag or tag.startswith("#"):
            continue
        problem = tag_problem(tag)
        if problem:
            raise InvalidRequest(f"--tags-file {path}, line {number}: {problem}")
        tags.append(tag)
        if len(tags) > MAX_TAGS:
            raise InvalidRequest(f"--tags-file {path}: more than {MAX_TAGS} tags")
    if not tags:
        raise InvalidRequest(f"--tags-file {path}: no tag in it")
    return tags


def plan_one(
    resolution: Resolution, repository: str, tag: str, destinations: Any, source: dict[str, str] | None = None
) -> dict[str, Any]:
    """One tag's plan in the --json shape: the source, the targets (destinations) or why none."""
    manual: dict[str, Any] = {"repository": repository, "tag": tag}
    if destinations:
        manual["destinations"] = destinations
    if source:
        manual["source"] = source
    result = resolution.noted(plan(parse_manual_input(manual), resolution.config))
    targets = [
        destination_dict(t.account, t.region, t.repository, tag=t.tag, rule=t.rule, source=t.source)
        for t in result.targets
    ]
    return {
        "repository": repository,
        "tag": tag,
        "source": result.source,
        "targets": targets,
        "skipped_reason": result.skipped_reason,
    }


def run(args: argparse.Namespace) -> int:
    """Plan and print the targets (of one tag, or of every tag of --tags-file)."""
    if (args.tag is None) == (args.tags_file is None):
        raise UsageError(
            "ecr-replicate plan: give exactly one of --tag and --tags-file (see ecr-replicate plan --help)"
        )
    config = load_config(args.config)
    tags = [args.tag] if args.tags_file is None else read_tags(args.tags_file)
    resolution = resolve(config, directory(config))
    # What organization destinations resolved to, in --json only when the config names some.
    organization = (
        {
            "organization": [
                {"rule": r.rule, "destination": r.selector, "accounts": sorted(r.accounts)}
                for r in resolution.resolved
            ],
            "skipped_accounts": [s.line() for s in resolution.skipped],
        }
        if needs_organizations(config)
        else {}
    )
    if not args.json:
        print_resolution(resolution)
    if args.tags_file is None:
        result = plan_one(resolution, args.repository, args.tag, args.destination, args.source)
        lines = _lines(result, several_sources=len(config.sources) > 1)
        print(json.dumps(result | organization, indent=2) if args.json else "\n".join(lines))
        return 0
    plans = [plan_one(resolution, args.repository, tag, args.destination, args.source) for tag in tags]
    replicating = sum(1 for p in plans if p["targets"])
    if args.json:
        counts = {"tags": len(plans), "replicate": replicating, "skipped": len(plans) - replicating}
        print(
            json.dumps(
                {"repository": args.repository, "counts": counts, "plans": plans} | organization, indent=2
            )
        )
        return 0
    for result in plans:
        where = ", ".join(f"{t['account']}/{t['region']} ({t['rule']})" for t in result["targets"])
        print(
            f"{result['tag']}: {'-> ' + where if where else 'skipped: ' + cut(result['skipped_reason'] or '', 200)}"
        )
    print(f"{len(plans)} tag(s): {replicating} replicate, {len(plans) - replicating} skipped")
    return 0


def _lines(result: dict[str, Any], *, several_sources: bool) -> list[str]:
    if not result["targets"]:
        return [f"nothing to replicate: {result['skipped_reason']}"]
    origin = f" from {result['source']}" if several_sources and result["source"] else ""
    head = f"{result['repository']}:{result['tag']}{origin} replicates to {len(result['targets'])} destination(s):"
    return [head] + [
        f"  {t['account']}/{t['region']}  {t['repository']}:{t['tag']}  (rule {t['rule']})"
        for t in result["targets"]
    ]


def directory(config: ReplicationConfig) -> OrganizationDirectory | None:
    """An Organizations directory with the caller's credentials, when the config needs one."""
    if not needs_organizations(config):
        return None
    return OrganizationDirectory(
        boto3.client("organizations", region_name=config.source.region, config=BOTO_CONFIG)
    )


def print_resolution(resolution: Resolution) -> None:
    """The accounts each organization destination resolved to, then the accounts skipped and why."""
    for resolved in resolution.resolved:
        accounts = ", ".join(sorted(resolved.accounts)) or "none"
        print(f"rule {resolved.rule}: {resolved.selector}: {len(resolved.accounts)} account(s): {accounts}")
    for skipped in resolution.skipped:
        print(f"  skipped {skipped.line()}")
