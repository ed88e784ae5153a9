"""`ecr-replicate status CONFIG REPOSITORY:TAG | REPOSITORY --all [--json]`: where an image is.

For every destination the rules name: present (the source's digest), stale (another digest), missing,
blocked (its rule's gates refuse the image, with the reason), or archived (the source image is in ECR's
archive storage class and the destination lacks it, or the destination's copy is archived), with the
destination digest and push time; unknown when the destination could not be read. Exit 0 when every
destination has it, 1 when some lack it (archived included) or could not be read, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from workflow.core.commandline import add_command, add_json_argument
from workflow.core.exceptions import InvalidRequest
from workflow.core.grammar import repository_problem, tag_problem
from workflow.models.config import load_config
from workflow.ops.status import image_status


def parse_image(value: str, every_tag: bool) -> tuple[str, str | None]:
    """`REPOSITORY:TAG` (or `REPOSITORY` with --all) -> (repository, tag), validated against ECR's grammar."""
    repository, separator, tag = value.partition(":")
    if every_tag and separator:
        raise InvalidRequest(f"{value!r}: give REPOSITORY without a tag with --all")
    if not every_tag and not (separator and tag):
        raise InvalidRequest(f"{value!r} is not REPOSITORY:TAG (or give REPOSITORY --all)")
    problem = repository_problem(repository) or (tag_problem(tag) if not every_tag else None)
    if problem:
        raise InvalidRequest(problem)
    return repository, (None if every_tag else tag)


def register(subparsers: Any) -> None:
    """Add the `status` sub-command."""
    parser = add_command(
        subparsers,
        "status",
        summary="where an image is: present, stale, missing or blocked by a gate at each destination the rules name",
        description="For every destination the rules name: present (the source's digest), stale (another "
        "digest, and whether a replication would replace it), missing, blocked (its rule's gates refuse the "
        "image) or unknown (the destination could not be read). With `operators` in the config the destinations "
        "are read through their read-only role. Exit 0 when every destination has the image, 1 when some lack it.",
        examples=[
            "ecr-replicate status replication.yaml app:release-1.2.0",
            "ecr-replicate status replication.yaml app --all --json",
        ],
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    parser.add_argument("image", metavar="REPOSITORY:TAG", help="source image (REPOSITORY with --all)")
    parser.add_argument("--all", action="store_true", help="every tag of REPOSITORY the rules accept")
    parser.add_argument(
        "--source",
        metavar="ACCOUNT/REGION",
        help="only the image in this source of a config with several (default: every source selecting it)",
    )
    add_json_argument(parser, "the report")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the status; 0 when every destination has the image(s), else 1."""
    repository, tag = parse_image(args.image, args.all)
    config = load_config(args.config)
    # A person runs this: with `operators` in the config, the destinations are read through their read-only
    # role (the destination roles trust only the source stack's own roles). An AWS failure is reported by
    # workflow.cli, in one line.
    report = image_status(
        config, repository, tag, as_operator=config.operators is not None, source=args.source
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0 if report.complete else 1
