"""lambdas.reconcile: the scheduled reconciliation function against moto."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas import reconcile
from tests.unit.conftest import FakeLambdaContext
from tests.unit.fake_ecr import push, use_moto_environment
from tests.unit.test_sync import IDLE, PASS_MACHINE
from workflow.core.exceptions import InvalidConfig

SOURCE = "111111111111"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto in the source account: app:release-1 and app:dev-1, a state machine, a topic with a queue."""
    use_moto_environment(monkeypatch, MOTO_ACCOUNT_ID=SOURCE)
    with mock_aws(config=IDLE):
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.create_repository(repositoryName="app")
        push(ecr, "app", "release-1", 10)
        push(ecr, "app", "dev-1", 20)
        machine = boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
            name="replication", definition=PASS_MACHINE, roleArn=f"arn:aws:iam::{SOURCE}:role/sfn"
        )["stateMachineArn"]
        sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="replication")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("STATE_MACHINE_ARN", machine)
        monkeypatch.setenv("TOPIC_ARN", topic)
        yield {"machine": machine, "queue": queue}


def test_reconcile_starts_the_missing_work_and_notifies(
    world: dict[str, str], config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given the packaged config (app release-* to two Regions) and empty destinations
    config_file()

    # When the scheduled function runs
    result = reconcile.handler({}, lambda_context)

    # Then it starts one execution for app:release-1 to both Regions, and says so on the topic
    assert result["counts"]["executions started"] == 1
    assert result["counts"]["not matching the rules"] == 1
    assert result["notified"] is True
    (action,) = result["actions"]
    assert action["destinations"] == ["222222222222/eu-west-1", "222222222222/us-west-2"]
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    (execution,) = sfn.list_executions(stateMachineArn=world["machine"])["executions"]
    assert execution["name"] == action["name"]
    body = boto3.client("sqs", region_name="us-east-1").receive_message(QueueUrl=world["queue"])["Messages"][
        0
    ]["Body"]
    assert json.loads(body)["Subject"] == "ecr-replicate reconciliation repaired"


def test_reconcile_with_nothing_to_repair_stays_quiet(
    world: dict[str, str], config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given a first run that already started the work
    config_file()
    reconcile.handler({}, lambda_context)
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.purge_queue(QueueUrl=world["queue"])

    # When the function runs again
    result: dict[str, Any] = reconcile.handler({}, lambda_context)

    # Then nothing new starts and nothing is published
    assert result["counts"]["already started"] == 1
    assert result["counts"]["executions started"] == 0
    assert result["notified"] is False
    assert "Messages" not in sqs.receive_message(QueueUrl=world["queue"])


def test_missing_state_machine_setting_is_named(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no STATE_MACHINE_ARN When the function runs Then InvalidConfig names the variable
    config_file()
    monkeypatch.delenv("STATE_MACHINE_ARN", raising=False)
    with pytest.raises(InvalidConfig, match="STATE_MACHINE_ARN"):
        reconcile.handler({}, lambda_context)


def test_max_in_flight_from_the_environment_bounds_what_a_run_starts(
    world: dict[str, str],
    config_file: Callable[..., Path],
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a second missing release, and room for one execution only
    config_file()
    push(boto3.client("ecr", region_name="us-east-1"), "app", "release-2", 30)
    monkeypatch.setenv("MAX_IN_FLIGHT", "1")
    # When the function runs
    result = reconcile.handler({}, lambda_context)
    # Then it starts one and leaves the other for the next run
    assert result["counts"]["executions started"] == 1
    assert result["counts"]["deferred to the next run"] == 1


def test_a_bad_max_in_flight_setting_is_named(
    world: dict[str, str],
    config_file: Callable[..., Path],
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given MAX_IN_FLIGHT=0 When the function runs Then InvalidConfig names the variable and value
    config_file()
    monkeypatch.setenv("MAX_IN_FLIGHT", "0")
    with pytest.raises(InvalidConfig, match="MAX_IN_FLIGHT: '0'"):
        reconcile.handler({}, lambda_context)
