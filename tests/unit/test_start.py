"""`ecr-replicate start`: start an execution by hand, optionally wait and print the summary (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workflow.cli import main
from workflow.ops import executions

ROLE = "arn:aws:iam::123456789012:role/ecr-replication-states"
SUMMARY = {
    "outcome": "SUCCEEDED",
    "subject": "ECR replication SUCCEEDED: app:release-1.2.0 (2 copied)",
    "message": "ECR replication of app:release-1.2.0: SUCCEEDED (2 destinations: 2 copied).\n",
}


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="eu-central-1")


def state_machine(client: Any, name: str, states: dict[str, Any]) -> str:
    definition = {"StartAt": next(iter(states)), "States": states}
    return str(
        client.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
            "stateMachineArn"
        ]
    )


def start_and_wait(arn: str, tag: str = "release-1.2.0") -> int:
    return main(
        [
            "start",
            "--state-machine-arn",
            arn,
            "--repository",
            "app",
            "--tag",
            tag,
            "--wait",
            "--poll-seconds",
            "0.05",
        ]
    )


def executions_of(client: Any, arn: str) -> list[dict[str, Any]]:
    listed = client.list_executions(stateMachineArn=arn)["executions"]
    return [client.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_start_sends_the_manual_input_and_returns_without_waiting(
    sfn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a state machine in eu-central-1
    arn = state_machine(sfn, "echo", {"Echo": {"Type": "Pass", "End": True}})
    # When a narrowed dry run is started without --wait
    code = main(
        [
            "start",
            "--state-machine-arn",
            arn,
            "--repository",
            "app",
            "--tag",
            "release-1.2.0",
            "--destination",
            "222222222222:eu-west-1",
            "--dry-run",
            "--name",
            "manual-hotfix-1",
        ]
    )
    # Then it exits 0, prints the execution and its console link
    assert code == 0
    out = capsys.readouterr().out
    assert "started arn:aws:states:eu-central-1:123456789012:execution:echo:manual-hotfix-1\n" in out
    assert (
        "https://eu-central-1.console.aws.amazon.com/states/home?region=eu-central-1#/v2/executions/details/"
        in out
    )
    # And the execution's input is exactly the console's manual input
    (execution,) = executions_of(sfn, arn)
    assert json.loads(execution["input"]) == {
        "repository": "app",
        "tag": "release-1.2.0",
        "destinations": [{"account": "222222222222", "region": "eu-west-1"}],
        "dryRun": True,
    }


def test_wait_prints_the_summary_and_exits_0_on_success(sfn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a state machine whose output is a summary
    arn = state_machine(sfn, "ok", {"Done": {"Type": "Pass", "Result": SUMMARY, "End": True}})
    # When started with --wait
    code = start_and_wait(arn)
    # Then the subject and body are printed and the exit code is 0
    out = capsys.readouterr().out
    assert code == 0
    assert (
        ": SUCCEEDED\n\nECR replication SUCCEEDED: app:release-1.2.0 (2 copied)\n\nECR replication of app"
        in out
    )


def test_wait_prints_error_and_cause_and_exits_1_on_failure(
    sfn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a state machine that fails as the replication does when a destination failed
    arn = state_machine(
        sfn,
        "fails",
        {"Failed": {"Type": "Fail", "Error": "ReplicationFailed", "Cause": "1 of 2 destinations failed"}},
    )
    # When started with --wait
    code = start_and_wait(arn)
    # Then the error and cause are printed and the exit code is 1
    out = capsys.readouterr().out
    assert code == 1
    assert ": FAILED\n\nerror: ReplicationFailed\ncause: 1 of 2 destinations failed\n" in out


def test_wait_reports_a_skipped_run(sfn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a state machine that ends like the workflow's "nothing to replicate" path
    skipped = {"outcome": "SKIPPED", "repository": "app", "tag": "dev-1", "skipped_reason": "tag excluded"}
    arn = state_machine(sfn, "skip", {"Skip": {"Type": "Pass", "Result": skipped, "End": True}})
    # When started with --wait / Then the reason is printed and the run counts as a success
    code = start_and_wait(arn, "dev-1")
    assert code == 0
    assert "nothing replicated: tag excluded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--repository", "App!", "--tag", "v1"], "repository"),
        (["--repository", "app", "--tag", "v1", "--destination", "12:eu-west-1"], "destinations[0]"),
    ],
)
def test_bad_input_is_refused_before_anything_starts(
    sfn: Any, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    # Given a bad repository name or destination
    arn = state_machine(sfn, "never", {"Never": {"Type": "Pass", "End": True}})
    # When started / Then exit 2 with the problem named, and no execution exists
    assert main(["start", "--state-machine-arn", arn, *arguments]) == 2
    assert message in capsys.readouterr().err
    assert executions_of(sfn, arn) == []


def test_a_malformed_state_machine_arn_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Given something that is not a state machine ARN / Then exit 2 naming the expected form
    code = main(["start", "--state-machine-arn", "ecr-replication", "--repository", "app", "--tag", "v1"])
    assert code == 2
    assert "is not a state machine ARN" in capsys.readouterr().err


def test_wait_polls_until_the_execution_ends() -> None:
    # Given a client whose execution runs for two polls
    class Client:
        def __init__(self) -> None:
            self.statuses = ["RUNNING", "RUNNING", "SUCCEEDED"]

        def describe_execution(self, executionArn: str) -> dict[str, Any]:
            status = self.statuses.pop(0)
            return (
                {"status": status, "output": json.dumps(SUMMARY)}
                if status == "SUCCEEDED"
                else {"status": status}
            )

    sleeps: list[float] = []
    # When waited on
    report = executions.wait(Client(), "arn:x", poll_seconds=3, sleep=sleeps.append)
    # Then it slept between polls and returns the parsed output
    assert sleeps == [3, 3]
    assert report.succeeded
    assert report.output == SUMMARY
