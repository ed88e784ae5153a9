"""Replication events and the lag metric, end to end: an EventBridge rule delivers them to SQS in moto."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import E2E, EU, US, listen, received
from workflow.pipeline.announce import FAILED, REPLICATED, SOURCE
from workflow.pipeline.metrics import NAMESPACE, Metric
from workflow.pipeline.runbook import RUNBOOK_URL

pytestmark = pytest.mark.e2e


def lags(output: str) -> dict[str, float]:
    """Region -> ReplicationLag value of the EMF documents the handlers printed."""
    values = {}
    for line in output.splitlines():
        if '"_aws"' in line and f'"{Metric.REPLICATION_LAG.value}"' in line:
            document = json.loads(line)
            assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
            values[document["region"]] = float(document[Metric.REPLICATION_LAG.value][0])
    return values


def test_each_finished_target_puts_one_event_and_the_lag_is_measured(
    e2e: E2E, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a rule listening for our events, and eu-west-1's copy failing as a registry refusing the push
    queue = listen(e2e, "replication-events", [REPLICATED, FAILED])
    tag = e2e.new_tag()
    image = e2e.push(tag)
    refused = json.dumps(
        {"error": "RegistryProtocolError", "message": "POST /v2/app/blobs/uploads/: HTTP 405"}
    )
    e2e.runtime.codebuild.copier_writes(
        f"{e2e.runtime.registry_of(EU['account'], EU['region']).host}/app:{tag}", refused
    )
    e2e.runtime.notifications()
    logged = e2e.runtime.lambda_log.stat().st_size
    capsys.readouterr()
    # When the release is pushed and replicated
    [execution] = e2e.run_event(tag, image)
    # Then one event per target arrived: replicated to us-west-2, failed at eu-west-1
    events = received(e2e, queue)
    by_account = {event["detail"]["destination"]["account"]: event for event in events}
    assert len(events) == 2
    assert {a: (e["detail-type"], e["detail"]["action"]) for a, e in by_account.items()} == {
        EU["account"]: (FAILED, "failed"),
        US["account"]: (REPLICATED, "copied"),
    }
    assert by_account[US["account"]]["detail"] == {
        "repository": "app",
        "tag": tag,
        "digest": image.digest,
        "destination": {"account": US["account"], "region": US["region"], "repository": "app"},
        "action": "copied",
        "error": None,
        "source": "111111111111/us-east-1",
    }
    assert by_account[EU["account"]]["detail"]["error"] == "RegistryProtocolError"
    # and each names the execution in its resources, from our source
    for event in events:
        assert event["source"] == SOURCE
        assert execution.arn in event["resources"]
    # And the PARTIAL email links the failure's runbook section and its copy build's log
    [notification] = e2e.runtime.notifications()
    assert "PARTIAL" in notification["subject"]
    assert f"runbook: {RUNBOOK_URL}#registryprotocolerror" in notification["message"]
    assert (
        "build log: https://us-east-1.console.aws.amazon.com/codesuite/codebuild/" in notification["message"]
    )
    # And the lag from the push to the copied destination was emitted for its Region, and is plausible
    # (the handlers' EMF lines go to the Lambda log, as to CloudWatch Logs; once pytest has swapped
    # sys.stdout for a later test, to pytest's capture instead)
    with e2e.runtime.lambda_log.open(encoding="utf-8") as log:
        log.seek(logged)
        measured = lags(log.read() + capsys.readouterr().out)
    assert set(measured) == {US["region"]}
    assert 0 <= measured[US["region"]] < 300, measured
