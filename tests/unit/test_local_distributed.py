"""The local runtime's Distributed Map writes its results and fails past its threshold as AWS does (moto does
neither): workflow/local/distributed.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.core.config import default_user_config

from workflow.local.distributed import distributed_map, parseable

BUCKET = "fanout-test-bucket"
ITEMS = [{"i": i} for i in range(6)]


def definition(tolerated: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Distributed Map over ITEMS (from S3) whose odd items fail, writing its results to S3."""
    child = {
        "StartAt": "Odd?",
        "States": {
            "Odd?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.item.i", "NumericEquals": 1, "Next": "Boom"}],
                "Default": "Echo",
            },
            "Boom": {"Type": "Fail", "Error": "Boom", "Cause": "item one fails"},
            "Echo": {
                "Type": "Pass",
                "Parameters": {"seen.$": "$.item.i", "by.$": "$.execution"},
                "End": True,
            },
        },
    }
    return {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": BUCKET, "Key": "items.json"},
                },
                "ItemSelector": {
                    "item.$": "$$.Map.Item.Value",
                    "execution.$": "$$.Execution.Name",
                    "run.$": "$.run",
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **child,
                },
                "MaxConcurrency": 2,
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": BUCKET, "Prefix.$": "$.prefix"},
                },
                **(tolerated or {}),
                "ResultPath": "$.map_run",
                "End": True,
            }
        },
    }


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(), mock.patch.dict(default_user_config, config):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="items.json", Body=json.dumps(ITEMS).encode())
        role = boto3.client("iam", region_name="us-east-1").create_role(
            RoleName="sfn", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        yield {"s3": s3, "sfn": boto3.client("stepfunctions", region_name="us-east-1"), "role": role}


def run(aws: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    sfn = aws["sfn"]
    text = parseable(
        json.dumps(definition)
    )  # as the local runtime creates it (moto wants 100.0, AWS takes 100)
    name = f"fan-{len(sfn.list_state_machines()['stateMachines'])}"
    machine = sfn.create_state_machine(name=name, definition=text, roleArn=aws["role"])
    arn = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"],
        name="parent-run",
        input=json.dumps({"run": "r1", "prefix": "results"}),
    )["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.1)
    return described


def read(aws: dict[str, Any], key: str) -> Any:
    return json.loads(aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_moto_alone_reads_result_writer_paths_from_the_outputs_writes_no_results_and_has_no_threshold(
    aws: dict[str, Any],
) -> None:
    # Given moto without the stand-in / When the Map's ResultWriter takes its prefix from the state input
    described = run(aws, definition())
    # Then the path is looked up in the children's outputs (AWS: in the state input) and the execution fails
    assert described["status"] == "FAILED"
    assert "The JSONPath '$.prefix' could not be found in the input '[" in described["cause"]
    # And with a fixed prefix, it succeeds although a child failed, and its manifest lists no result file
    fixed = definition()
    fixed["States"]["Fan"]["ResultWriter"]["Parameters"] = {"Bucket": BUCKET, "Prefix": "results"}
    described = run(aws, fixed)
    assert described["status"] == "SUCCEEDED"
    manifest = read(aws, json.loads(described["output"])["map_run"]["ResultWriterDetails"]["Key"])
    assert manifest["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}


def test_results_are_written_per_status_with_each_childs_input_output_and_error(aws: dict[str, Any]) -> None:
    # Given the stand-in and a Map that tolerates every failure
    with distributed_map():
        described = run(aws, definition({"ToleratedFailurePercentage": 100}))
    # Then the Map Run succeeds and its manifest lists one file per status, as ResultWriter writes them
    assert described["status"] == "SUCCEEDED"
    written = json.loads(described["output"])["map_run"]
    assert written["ResultWriterDetails"]["Key"].startswith("results/")
    manifest = read(aws, written["ResultWriterDetails"]["Key"])
    assert manifest["MapRunArn"] == written["MapRunArn"]
    files = manifest["ResultFiles"]
    assert (len(files["SUCCEEDED"]), len(files["FAILED"]), files["PENDING"]) == (1, 1, [])
    succeeded = read(aws, files["SUCCEEDED"][0]["Key"])
    failed = read(aws, files["FAILED"][0]["Key"])
    # And each child has its input (the ItemSelector's: the item, the parent's name, the state input) as JSON
    # text, its output as JSON text, or its error and cause
    assert sorted(json.loads(child["Input"])["item"]["i"] for child in succeeded) == [0, 2, 3, 4, 5]
    assert {json.loads(child["Output"])["by"] for child in succeeded} == {"parent-run"}
    assert {json.loads(child["Input"])["run"] for child in succeeded} == {"r1"}
    assert [(child["Status"], child["Error"], child["Cause"]) for child in failed] == [
        ("FAILED", "Boom", "item one fails")
    ]
    assert json.loads(failed[0]["Input"])["item"] == {"i": 1}
    assert ":execution:fan-0/" in failed[0]["ExecutionArn"]
    assert files["FAILED"][0]["Size"] == len(json.dumps(failed))


def test_by_default_one_failed_child_fails_the_map_run(aws: dict[str, Any]) -> None:
    # Given the stand-in and the default threshold / When one child fails
    with distributed_map():
        described = run(aws, definition())
    # Then the execution fails with the threshold's error, as on AWS
    assert described["status"] == "FAILED"
    assert described["error"] == "States.ExceedToleratedFailureThreshold"


def test_a_count_threshold_tolerates_up_to_its_count(aws: dict[str, Any]) -> None:
    # Given the stand-in and one failure tolerated / When exactly one child fails / Then the run succeeds
    with distributed_map():
        described = run(aws, definition({"ToleratedFailureCount": 1}))
    assert described["status"] == "SUCCEEDED"


def test_an_integer_percentage_is_parsed_as_aws_parses_it() -> None:
    # Given the ASL's integer percentage / When made parseable / Then only that number is written as a decimal
    text = '{"ToleratedFailurePercentage": 100, "MaxConcurrency": 10, "ToleratedFailurePercentage":5}'
    assert (
        parseable(text)
        == '{"ToleratedFailurePercentage": 100.0, "MaxConcurrency": 10, "ToleratedFailurePercentage":5.0}'
    )
