"""lambdas.summarize: the Map's records -> the summary the Notify and Outcome? states read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lambdas import summarize
from tests.unit.conftest import FakeLambdaContext, replication_config
from workflow.pipeline.metrics import NAMESPACE, Metric, dimensions_of

ASL = Path(__file__).resolve().parents[2] / "statemachine.asl.json"
EXECUTION = "arn:aws:states:us-east-1:111111111111:execution:ecr-replication:push-9"
DIGEST = "sha256:" + "e" * 64


def records() -> list[dict[str, Any]]:
    """One copied record and one failed record, as the Record function makes them."""
    return [
        {
            "account": "222222222222",
            "region": "eu-west-1",
            "repository": "app",
            "tag": "release-1.2.0",
            "status": "copied",
            "digest": DIGEST,
            "bytes_copied": 2048,
            "blobs_copied": 3,
            "blobs_skipped": 0,
            "seconds": 1.5,
        },
        {
            "account": "222222222222",
            "region": "us-west-2",
            "repository": "app",
            "tag": "release-1.2.0",
            "status": "failed",
            "error": "RegistryAuthError",
            "cause": json.dumps({"errorType": "RegistryAuthError", "errorMessage": "cannot assume role"}),
        },
    ]


def event(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "execution": "push-9",
        "execution_id": EXECUTION,
        "plan": {"repository": "app", "tag": "release-1.2.0", "dry_run": False},
        "results": results,
    }


def emf_metrics(lines: list[str]) -> dict[tuple[str, str], float]:
    """(name, "dimension=value" beyond service, or "") -> value of every EMF document printed."""
    metrics = {}
    for line in lines:
        if '"_aws"' in line:
            document = json.loads(line)
            directive = document["_aws"]["CloudWatchMetrics"][0]
            assert directive["Namespace"] == NAMESPACE
            (dimensions,) = directive["Dimensions"]
            extra = ",".join(f"{name}={document[name]}" for name in dimensions if name != "service")
            for definition in directive["Metrics"]:
                # the dimensions the dashboard names for it (workflow.pipeline.metrics, one list)
                assert set(dimensions) == set(dimensions_of(Metric(definition["Name"])))
                metrics[(definition["Name"], extra)] = document[definition["Name"]][0]
    return metrics


def test_partial_run_is_summarized_for_notify_and_outcome(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one copied and one failed destination
    config_file()
    # When the Summarize function runs
    output = summarize.handler(event(records()), lambda_context)
    # Then the fields the ASL reads are there: notify, subject, message, outcome, failure_cause
    assert output["outcome"] == "PARTIAL"
    assert output["notify"] is True
    assert output["subject"] == "ECR replication PARTIAL: app:release-1.2.0 (1 of 2 destinations failed)"
    assert "cause: cannot assume role" in output["message"]
    assert "us-east-1.console.aws.amazon.com/states" in output["message"]
    assert output["failure_cause"].startswith(output["subject"])
    assert output["totals"]["bytes_copied"] == 2048
    # and the replication events to put, one per destination, in one PutEvents batch
    [batch] = output["events"]
    assert [entry["DetailType"] for entry in batch] == [
        "ECR Image Replicated",
        "ECR Image Replication Failed",
    ]
    json.dumps(output)
    # And the metrics are emitted as EMF, by outcome, status and error (no lag: no push time)
    assert emf_metrics(capsys.readouterr().out.splitlines()) == {
        ("Executions", "outcome=PARTIAL"): 1.0,
        ("ImagesReplicated", ""): 1.0,
        ("TargetsFailed", ""): 1.0,
        ("TargetsBlocked", ""): 0.0,
        ("BytesCopied", ""): 2048.0,
        ("Targets", "status=copied"): 1.0,
        ("Targets", "status=failed"): 1.0,
        ("FailuresByError", "error=RegistryAuthError"): 1.0,
        ("CopySeconds", ""): 1.5,
    }


@pytest.mark.parametrize(("on", "notify"), [("failure", False), ("always", True)])
def test_success_notifies_as_the_config_says(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext, on: str, notify: bool
) -> None:
    # Given a successful run and notifications on failure or always
    config_file(replication_config(notifications={"emails": [], "on": on}))
    # When summarized / Then notify follows the config
    output = summarize.handler(event(records()[:1]), lambda_context)
    assert output["outcome"] == "SUCCEEDED"
    assert output["notify"] is notify
    assert output["failure_cause"] is None


def test_a_record_of_the_wrong_shape_is_rejected(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given a record with an unknown status / When summarized / Then validation names the field
    config_file()
    bad = {**records()[0], "status": "maybe"}
    with pytest.raises(ValueError, match="status"):
        summarize.handler(event([bad]), lambda_context)


def test_failed_lines_link_the_runbook_the_config_names(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given a config naming the team's copy of the runbook
    url = "https://git.example.com/platform/ecr-filtered-replication/-/blob/main/docs/runbook.md"
    config_file(replication_config(notifications={"emails": [], "runbook_url": url}))
    # When a run with a failed destination is summarized / Then its line links its section there
    output = summarize.handler(event(records()), lambda_context)
    assert f"runbook: {url}#registryautherror" in output["message"]


def test_the_lag_from_the_push_to_each_destination_tag_is_emitted_per_region(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a push at 03:00:00 and destinations tagged 42.5 s and 90 s later
    config_file()
    copied, failed = records()
    tagged = {**copied, "region": "us-west-2", "status": "tagged", "finished_at": "2026-12-01T03:01:30Z"}
    copied = {**copied, "finished_at": "2026-12-01T03:00:42.500000Z"}
    payload = event([copied, tagged, failed])
    payload["plan"]["pushed_at"] = "2026-12-01T03:00:00Z"
    # When summarized
    summarize.handler(payload, lambda_context)
    # Then one lag per tagged destination, in seconds, by Region only
    metrics = emf_metrics(capsys.readouterr().out.splitlines())
    lags = {key: value for key, value in metrics.items() if key[0] == "ReplicationLag"}
    assert lags == {
        ("ReplicationLag", "region=eu-west-1"): 42.5,
        ("ReplicationLag", "region=us-west-2"): 90.0,
    }
