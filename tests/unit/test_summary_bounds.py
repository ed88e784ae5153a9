"""The Summarize result bounded by construction: the worst case the config allows stays well inside Step
Functions' 256 KiB payload quota (a larger result is States.DataLimitExceeded: no summary, no email, no events).

Two worst cases: an inline run at the inline Map's limit (every line and event in the state), and a distributed
run at the config's maximum (results read from the fan-out bucket, events written there)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas import summarize
from tests.unit.conftest import FakeLambdaContext, replication_config
from workflow.core.grammar import REPOSITORY_MAX
from workflow.models.config import MAX_DESTINATIONS
from workflow.models.payloads import S3Object
from workflow.pipeline.fanout import INLINE_LIMIT, FanOutStore
from workflow.pipeline.summary import FAILURES_SHOWN, MESSAGE_BUDGET, RESULT_LIMIT

BUCKET = "ecr-replication-fanout-bounds"

MARGIN = 32 * 1024  # the worst case leaves at least this much of the quota unused
TAG = "T" * 128  # ECR's longest tag
SOURCE_REPOSITORY = "s" * REPOSITORY_MAX
# The longest destination name a template makes: "mirror/" + a 249-character source name, say.
REPOSITORY = "mirror/" + "m" * (REPOSITORY_MAX - len("mirror/"))
REGION = "ap-southeast-5"  # among the longest Region names
PROJECT = "p" * 255  # CodeBuild's longest project name
EXECUTION = "arn:aws-us-gov:states:us-gov-west-1:111111111111:execution:" + "m" * 80 + ":" + "e" * 80
CAUSE = "é€" * 250  # non-ASCII: each character escaped to \\uXXXX in the JSON the runtime writes


def record(index: int, status: str) -> dict[str, Any]:
    return {
        "account": f"{222222222222 + index:012d}",
        "region": REGION,
        "repository": REPOSITORY,
        "tag": TAG,
        "status": status,
        "digest": "sha512:" + "f" * 128,
        "error": "RegistryUnavailable" if status == "failed" else "ImageBlocked",
        "cause": CAUSE if status == "failed" else CAUSE * 2,  # a gate's reason: up to 1,000 characters
        "build_arn": f"arn:aws-us-gov:codebuild:{REGION}:{222222222222 + index:012d}:build/{PROJECT}:"
        + "0" * 36,
    }


@pytest.mark.parametrize("statuses", ["failed", "blocked", "mixed"])
def test_the_worst_case_inline_summarize_result_stays_well_under_256_kib(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext, statuses: str
) -> None:
    # Given as many destinations as the inline Map carries, every one failed or blocked with a long non-ASCII cause,
    # the longest repository names and tag, a long runbook URL and a break-glass override at its maximum
    config_file(
        replication_config(notifications={"emails": [], "runbook_url": "https://x.example/" + "u" * 1000})
    )
    records = [
        record(i, "failed" if statuses == "failed" or (statuses == "mixed" and i % 2) else "blocked")
        for i in range(INLINE_LIMIT)
    ]
    override = {"reason": "r" * 1024, "requested_by": "arn:aws:sts::111111111111:assumed-role/" + "q" * 2000}
    event = {
        "execution": "e" * 80,
        "execution_id": EXECUTION,
        "plan": {"repository": SOURCE_REPOSITORY, "tag": TAG, "dry_run": False, "override": override},
        "results": [r for r in records if r["status"] == "failed"],
        "blocked": [r for r in records if r["status"] == "blocked"],
    }
    # When the Summarize function runs
    output = summarize.handler(event, lambda_context)
    # Then its result, as the state's output, stays well under the quota (measured as the runtime writes it)
    size = len(json.dumps({"summary": output}))
    assert size <= RESULT_LIMIT - MARGIN, f"{size:,} characters"
    # and nothing that matters is lost: a line and an event per destination, each naming it whole
    assert len(output["lines"]) == INLINE_LIMIT
    entries = [entry for batch in output["events"] for entry in batch]
    assert len(entries) == INLINE_LIMIT
    details = [json.loads(entry["Detail"]) for entry in entries]
    assert {d["destination"]["repository"] for d in details} == {REPOSITORY}
    assert {(d["repository"], d["tag"]) for d in details} == {(SOURCE_REPOSITORY, TAG)}
    # the email says how many there are and is bounded; the Fail state's cause fits its 32,768 characters
    assert f"({INLINE_LIMIT} destinations:" in output["message"]
    assert len(json.dumps(output["message"])) <= MESSAGE_BUDGET + 2
    assert output["failure_cause"] is None or len(output["failure_cause"]) <= 32_768
    # and each PutEvents batch stays within EventBridge's limits
    assert all(len(batch) <= 10 for batch in output["events"])


def child(item: dict[str, Any]) -> dict[str, Any]:
    """A failed child execution as the Distributed Map's ResultWriter writes it (its record as Output)."""
    target = {
        "account": item["account"],
        "region": REGION,
        "repository": REPOSITORY,
        "tag": TAG,
        "rule": "fleet",
        "source_registry": "111111111111.dkr.ecr.us-gov-west-1.amazonaws.com",
        "source_repository": SOURCE_REPOSITORY,
        "source_reference": TAG,
        "registry": f"{item['account']}.dkr.ecr.{REGION}.amazonaws.com",
        "role_arn": f"arn:aws-us-gov:iam::{item['account']}:role/ecr-replication-target",
    }
    return {
        "ExecutionArn": EXECUTION + "/Replicate:x",
        "Input": json.dumps({"execution": "e" * 80, "dry_run": False, "target": target}),
        "Status": "SUCCEEDED",
        "Output": json.dumps(item),
    }


def test_the_worst_case_distributed_summarize_result_stays_well_under_256_kib(
    config_file: Callable[..., Path],
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the config's maximum of destinations in a distributed run, every one failed with a long non-ASCII
    # cause and the longest names, its results in the fan-out bucket
    config_file(
        replication_config(notifications={"emails": [], "runbook_url": "https://x.example/" + "u" * 1000})
    )
    monkeypatch.setenv("FANOUT_BUCKET", BUCKET)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        store = FanOutStore(s3, BUCKET)
        children = [child(record(i, "failed")) for i in range(MAX_DESTINATIONS)]
        targets = store.put("runs/e/targets.json", [json.loads(c["Input"])["target"] for c in children])
        results = store.put("runs/e/results/run/SUCCEEDED_0.json", children)
        listed = {"SUCCEEDED": [{"Key": results.key, "Size": 1}], "FAILED": [], "PENDING": []}
        manifest = store.put(
            "runs/e/results/run/manifest.json", {"DestinationBucket": BUCKET, "ResultFiles": listed}
        )
        event = {
            "execution": "e" * 80,
            "execution_id": EXECUTION,
            "plan": {"repository": SOURCE_REPOSITORY, "tag": TAG, "dry_run": False},
            "results": [],
            "blocked": [],
            "fan_out": {
                "mode": "distributed",
                "targets": targets.model_dump(mode="json"),
                "map_run": {"ResultWriterDetails": {"Bucket": BUCKET, "Key": manifest.key}},
            },
            "gate_error": None,
        }
        # When the Summarize function runs
        output = summarize.handler(event, lambda_context)
        events = store.get(S3Object.model_validate(output["events_object"]))
    # Then its result stays well under the quota, with at most FAILURES_SHOWN lines and the events in the bucket
    size = len(json.dumps({"summary": output}))
    assert size <= RESULT_LIMIT - MARGIN, f"{size:,} characters"
    assert output["totals"]["failed"] == MAX_DESTINATIONS
    assert len(output["lines"]) == FAILURES_SHOWN
    assert output["events"] == []
    assert sum(len(batch) for batch in events) == MAX_DESTINATIONS
    assert len(json.dumps(output["message"])) <= MESSAGE_BUDGET + 2


def test_a_short_run_keeps_every_cause_and_link_whole(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given two failed destinations with ordinary names / When summarized
    config_file()
    failed = [{**record(i, "failed"), "repository": "app", "cause": "cannot assume role x"} for i in range(2)]
    output = summarize.handler(
        {
            "execution": "e",
            "execution_id": EXECUTION,
            "plan": {"repository": "app", "tag": "v1"},
            "results": failed,
        },
        lambda_context,
    )
    # Then the bounds cost nothing: causes, runbook and build log links are all there
    for line in output["lines"]:
        assert line["cause"] == "cannot assume role x"
        assert line["runbook"].endswith("#registryunavailable")
        assert line["build_log"] is not None
