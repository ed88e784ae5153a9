"""Benchmark `sync --dry-run` against moto: time and ECR API calls, by repositories and tags.

Each scenario builds, in a fresh in-process moto, a source registry of R repositories x T tags (60% of
them `release-*`, the rest `dev-*`) and two destinations (one account, two Regions) where half of the
repositories exist and hold half of the release tags. It then runs the real `workflow.ops.sync.syncer.sync` in
dry-run mode and counts every ECR call through a botocore `before-call.ecr.*` hook.

Run: `.venv/bin/python bench/sync_dry_run.py` (defaults: 50x100, 100x100, 100x200).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit.fake_ecr import push
from workflow.models.config import parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync

SOURCE, DESTINATION = "123456789012", "222222222222"
ROLE = f"arn:aws:iam::{DESTINATION}:role/ecr-replication-target"
REGIONS = ("eu-west-1", "us-west-2")
MACHINE = f"arn:aws:states:us-east-1:{SOURCE}:stateMachine:replication"
CONFIG = {
    "source": {"account": SOURCE, "region": "us-east-1"},
    "rules": [
        {
            "name": "releases",
            "repositories": ["bench/*"],
            "tags": {"include": ["release-*"]},
            "destinations": [{"account": DESTINATION, "regions": list(REGIONS)}],
        }
    ],
}


def tag_of(index: int) -> str:
    """60% release-*, 40% dev-*."""
    return f"release-{index}" if index % 5 < 3 else f"dev-{index}"


def populate(repositories: int, tags: int) -> None:
    """The source registry and the two half-filled destinations."""
    setup = AwsClients(boto3.Session())
    source = setup.client("ecr", "us-east-1")
    destinations = [setup.client("ecr", region, ROLE) for region in REGIONS]
    for r in range(repositories):
        name = f"bench/repo-{r:03d}"
        source.create_repository(repositoryName=name)
        for t in range(tags):
            push(source, name, tag_of(t), r * 100_000 + t)
        if r % 2:
            continue
        for destination in destinations:
            destination.create_repository(repositoryName=name)
            for t in range(0, tags, 2):
                if tag_of(t).startswith("release-"):
                    push(destination, name, tag_of(t), r * 100_000 + t)


def scenario(repositories: int, tags: int) -> dict[str, Any]:
    """Populate a fresh moto, then time a dry-run sync and count its ECR calls."""
    with mock_aws():
        populate(repositories, tags)
        calls: Counter[str] = Counter()

        def count(client: Any) -> None:
            client.meta.events.register("before-call.ecr.*", lambda model, **_: calls.update([model.name]))

        clients = AwsClients(boto3.Session(), on_client=count)
        started = time.perf_counter()
        report = sync(
            parse_config(CONFIG), SyncOptions(state_machine_arn=MACHINE, dry_run=True), clients=clients
        )
        seconds = time.perf_counter() - started
    return {
        "repositories": repositories,
        "tags": repositories * tags,
        "destinations": len(REGIONS),
        "seconds": round(seconds, 2),
        "ecr_calls": sum(calls.values()),
        "by_operation": dict(sorted(calls.items())),
        "present": report.present,
        "would_start": report.started,
    }


def main() -> None:
    """Run the scenarios and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", metavar="REPOSxTAGS", help="e.g. 100x100 (repeatable)")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for text in args.scenario or ["50x100", "100x100", "100x200"]:
        repositories, tags = (int(part) for part in text.lower().split("x"))
        result = scenario(repositories, tags)
        print(
            f"{result['repositories']:>4} repos x {tags:>3} tags = {result['tags']:>6} tags, "
            f"{result['destinations']} destinations: {result['seconds']:>6.2f} s, "
            f"{result['ecr_calls']:>4} ECR calls {result['by_operation']}, "
            f"present {result['present']}, would start {result['would_start']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
