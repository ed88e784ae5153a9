"""statemachine.asl.json, statically: valid JSON, substitutions, Catch/Retry, error names, no parsing in the
ASL, the Copy contract, and the size of the records the Record function makes from realistic states."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow.core import exceptions
from workflow.models.payloads import CopyResult, Plan, S3Object, Target, TargetResult
from workflow.pipeline.announce import batches
from workflow.pipeline.fanout import INLINE_LIMIT
from workflow.pipeline.precheck import CopyJob
from workflow.pipeline.record import record
from workflow.pipeline.summary import CAUSE_LIMIT, FAILURE_ERROR, RunDetails, lines_of, summarize

ASL = Path(__file__).resolve().parents[2] / "statemachine.asl.json"
SUBSTITUTIONS = {
    "PlanFunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:ecr-replication-plan",
    "GateFunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:ecr-replication-gate",
    "PrecheckFunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:ecr-replication-precheck",
    "SummarizeFunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:ecr-replication-summarize",
    "RecordFunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:ecr-replication-record",
    "CopyProjectName": "ecr-replication-copy",
    "NotificationTopicArn": "arn:aws:sns:us-east-1:111111111111:ecr-replication",
}
STATES_ERRORS = {
    "States.ALL",
    "States.TaskFailed",
    "States.Timeout",
    "States.HeartbeatTimeout",
    "States.Permissions",
    "States.Runtime",
    "States.DataLimitExceeded",
}
LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
CODEBUILD_ERRORS = {
    "CodeBuild.CodeBuildException",
    "CodeBuild.AWSCodeBuildException",
    "CodeBuild.AccountLimitExceededException",
    "CodeBuild.ThrottlingException",
}
SNS_ERRORS = {"SNS.ThrottledException", "SNS.InternalErrorException", "SNS.KMSThrottlingException"}
# Step Functions' optimized EventBridge integration: a PutEvents response with FailedEntryCount > 0.
EVENTBRIDGE_ERRORS = {"EventBridge.FailedEntry"}
WORKFLOW_ERRORS = {
    name
    for name, value in inspect.getmembers(exceptions, inspect.isclass)
    if issubclass(value, exceptions.ReplicationError)
}
PLAIN_PATH = re.compile(r"\$\$?(\.[A-Za-z_][A-Za-z0-9_]*)*")


def substitute(template: str, values: dict[str, str]) -> str:
    """Fn::Sub-style plain `${Name}` replacement."""
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    return template


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(substitute(ASL.read_text(encoding="utf-8"), SUBSTITUTIONS))


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the States object it belongs to), descending into Map processors."""
    for name, state in states.items():
        yield name, state, states
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from all_states(processor["States"])


def inner(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["States"]["Replicate"]["ItemProcessor"]["States"]


def test_the_file_is_valid_json_as_committed() -> None:
    # Given the file as it stands in the repository / When json.tool reads it / Then it is JSON
    checked = subprocess.run(
        [sys.executable, "-m", "json.tool", str(ASL)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_the_template_uses_exactly_the_seven_substitutions_each_inside_a_string() -> None:
    # Given the template text / Then its placeholders are exactly the six names CDK fills
    text = ASL.read_text(encoding="utf-8")
    assert set(re.findall(r"\$\{([^}]*)\}", text)) == set(SUBSTITUTIONS)
    # And each one is a whole JSON string value, so substituting keeps the document's structure
    strings = [value for _, value in _string_values(json.loads(text)) if "${" in value]
    assert sorted(strings) == sorted(f"${{{name}}}" for name in re.findall(r"\$\{([^}]*)\}", text))


def _string_values(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, value) for every string value in a JSON document."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _string_values(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from _string_values(value, key)
    elif isinstance(node, str):
        yield key, node


def test_the_map_takes_its_concurrency_from_the_plan_output(definition: dict[str, Any]) -> None:
    # Given the substituted definition / Then the Map reads MaxConcurrency from the Plan's output
    replicate = definition["States"]["Replicate"]
    assert "MaxConcurrency" not in replicate
    assert replicate["MaxConcurrencyPath"] == "$.plan.max_concurrency"
    assert definition["States"]["Plan"]["ResultSelector"] == {"plan.$": "$.Payload"}
    assert "${" not in json.dumps(definition)


def test_no_state_parses_what_a_component_produced(definition: dict[str, Any]) -> None:
    # Given every path and `.$` value of the definition
    text = json.dumps(definition)
    paths = [
        (key, value)
        for key, value in _string_values(definition)
        if key.endswith(".$") or (key.endswith("Path") and value is not None)
    ]
    assert paths
    # Then none is an intrinsic function (a bad argument raises the uncatchable States.Runtime) or a filter
    assert "States.StringToJson" not in text
    assert "States.ArrayGetItem" not in text
    for key, value in paths:
        assert PLAIN_PATH.fullmatch(value), f"{key}: {value} is not a plain path"
    # And the Copy keeps the build's output whole: no path reaches into it
    copy = inner(definition)["Copy"]
    assert "ResultSelector" not in copy
    assert copy["ResultPath"] == "$.copy"
    # And the Record task hands the Record function the iteration's whole state
    for state in (inner(definition)["Record"], definition["States"]["ReadPlanError"]):
        assert state["Parameters"] == {"FunctionName": SUBSTITUTIONS["RecordFunctionArn"], "Payload.$": "$"}


def test_every_transition_targets_an_existing_state_and_every_state_is_reachable(
    definition: dict[str, Any],
) -> None:
    # Given every States object (top level and the Map's) / Then Next/Default/Catch targets exist
    def check(states: dict[str, Any], start: str) -> None:
        targets: dict[str, set[str]] = {}
        for name, state in states.items():
            nexts = {state["Next"]} if "Next" in state else set()
            nexts |= {choice["Next"] for choice in state.get("Choices", [])}
            nexts |= {state["Default"]} if "Default" in state else set()
            nexts |= {catcher["Next"] for catcher in state.get("Catch", [])}
            assert nexts <= set(states), f"{name} transitions to a missing state: {nexts - set(states)}"
            terminal = state.get("End") or state["Type"] in ("Succeed", "Fail")
            assert terminal or nexts, f"{name} neither ends nor moves on"
            targets[name] = nexts
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(targets[name])
        assert seen == set(states), f"unreachable: {set(states) - seen}"

    check(definition["States"], definition["StartAt"])
    for name in ("Replicate", "ReplicateAtScale", "Announce", "AnnounceAtScale"):
        processor = definition["States"][name]["ItemProcessor"]
        check(processor["States"], processor["StartAt"])


def test_every_task_has_a_catch_ending_with_states_all(definition: dict[str, Any]) -> None:
    # Given every Task state / Then it catches, and its last catcher takes every error
    tasks = [(name, state) for name, state, _ in all_states(definition["States"]) if state["Type"] == "Task"]
    assert {name for name, _ in tasks} == {
        "Plan",
        "ReadPlanError",
        "Gate",
        "Precheck",
        "Copy",
        "Record",
        "Summarize",
        "Notify",
        "PutEvents",
        "PutEventsAtScale",
    }
    maps = {"PutEvents": "Announce", "PutEventsAtScale": "AnnounceAtScale"}
    for name, state in tasks:
        # A PutEvents fails its iteration (or child execution), and its Map catches it
        catcher = definition["States"][maps[name]] if name in maps else state
        assert catcher.get("Catch"), f"{name} has no Catch"
        assert catcher["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name


def test_every_error_name_is_a_states_lambda_codebuild_or_workflow_error(definition: dict[str, Any]) -> None:
    # Given every ErrorEquals in Retry and Catch / Then each name is known
    allowed = (
        STATES_ERRORS | LAMBDA_ERRORS | CODEBUILD_ERRORS | SNS_ERRORS | EVENTBRIDGE_ERRORS | WORKFLOW_ERRORS
    )
    names = [
        name
        for _, state, _ in all_states(definition["States"])
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]
        for name in rule["ErrorEquals"]
    ]
    assert names
    assert set(names) <= allowed, f"unknown error names: {set(names) - allowed}"
    assert {"RegistryUnavailable", "InvalidRequest", "DestinationNotAllowed"} <= set(names)


def test_retries_are_short_with_backoff_and_full_jitter(definition: dict[str, Any]) -> None:
    # Given the Copy's retriers / Then CodeBuild throttling is retried briefly, and the account's build
    # limit for long enough (~20 minutes) for running builds to finish
    copy = inner(definition)["Copy"]
    throttling, limit = copy["Retry"]
    assert set(throttling["ErrorEquals"]) | set(limit["ErrorEquals"]) == CODEBUILD_ERRORS
    assert limit["ErrorEquals"] == ["CodeBuild.AccountLimitExceededException"]
    assert (throttling["IntervalSeconds"], throttling["MaxAttempts"], throttling["BackoffRate"]) == (2, 4, 2)
    waits = [
        min(limit["IntervalSeconds"] * limit["BackoffRate"] ** n, limit["MaxDelaySeconds"])
        for n in range(limit["MaxAttempts"])
    ]
    assert 15 * 60 <= sum(waits) <= 30 * 60
    # And every retrier waits a few seconds at most before its first retry, with jitter
    for name, state, _ in all_states(definition["States"]):
        for retrier in state.get("Retry", []):
            assert retrier["IntervalSeconds"] <= 3, name
            assert retrier.get("MaxDelaySeconds", 0) <= 300, name
            assert retrier["JitterStrategy"] == "FULL", name
            assert "States.ALL" not in retrier["ErrorEquals"], name
    # And the Lambda tasks retry Lambda's transient errors
    for name in ("Plan", "ReadPlanError", "Summarize"):
        assert set(definition["States"][name]["Retry"][0]["ErrorEquals"]) == LAMBDA_ERRORS
    assert [set(r["ErrorEquals"]) for r in inner(definition)["Record"]["Retry"]] == [LAMBDA_ERRORS]


def test_the_tasks_that_read_registries_retry_a_registry_that_stalled_or_stayed_unavailable(
    definition: dict[str, Any],
) -> None:
    # Given Precheck and Gate, whose handlers end a stalled registry with RegistryTimeout before their deadline
    # (lambdas/, workflow/registry/deadline.py) and a registry still failing with RegistryUnavailable
    # Then each retries both, a few times, after Lambda's own transient errors
    for state in (inner(definition)["Precheck"], definition["States"]["Gate"]):
        retriers = [set(r["ErrorEquals"]) for r in state["Retry"]]
        assert retriers == [LAMBDA_ERRORS, {"RegistryUnavailable", "RegistryTimeout"}], state["Comment"][:40]
        assert 2 <= state["Retry"][1]["MaxAttempts"] <= 3


def test_copy_starts_the_codebuild_project_with_exactly_its_plaintext_variables(
    definition: dict[str, Any],
) -> None:
    # Given the Copy state / Then it is the .sync integration on the substituted project
    copy = inner(definition)["Copy"]
    assert copy["Resource"] == "arn:aws:states:::codebuild:startBuild.sync"
    assert copy["Parameters"]["ProjectName"] == "ecr-replication-copy"
    variables = copy["Parameters"]["EnvironmentVariablesOverride"]
    assert [v["Name"] for v in variables] == [
        "SOURCE_IMAGE",
        "DESTINATION_IMAGE",
        "DST_ROLE_ARN",
        "DST_EXTERNAL_ID",
        "DST_REGION",
        "DST_CREDENTIALS_SECRET",
        "DST_CREDENTIALS_REGION",
        "INSECURE_REGISTRIES",
        "PUT_RATE",
        "ON_TAG_CONFLICT",
        "SEED_IMAGE",
        "SEED_ROLE_ARN",
        "SEED_EXTERNAL_ID",
        "RELAY_FUNCTION",
        "SRC_ROLE_ARN",
    ]
    assert {v["Type"] for v in variables} == {"PLAINTEXT"}
    # And every variable is a field of the Precheck's job, by the same name
    assert {v["Value.$"] for v in variables} == {f"$.precheck.job.{f}" for f in CopyJob.model_fields}
    # And a source in another account is read through its read-only role, which the Precheck names
    assert variables[14]["Value.$"] == "$.precheck.job.source_role_arn"
    # And a destination in another partition gets its credentials secret's name, never a value
    assert variables[5]["Value.$"] == "$.precheck.job.credentials_secret"
    # And the build paces its manifest PUTs at the share of the PutImage quota the plan gave its target
    assert variables[8]["Value.$"] == "$.precheck.job.put_rate"
    # And whatever the build ends with, the iteration goes on to Record
    assert copy["Next"] == "Record"
    assert copy["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Record"}]


def test_lambda_tasks_use_the_substituted_functions_and_sns_the_topic(definition: dict[str, Any]) -> None:
    # Given the Lambda and SNS tasks / Then they reference the substituted ARNs
    states = definition["States"]
    assert states["Plan"]["Parameters"]["FunctionName"] == SUBSTITUTIONS["PlanFunctionArn"]
    assert inner(definition)["Precheck"]["Parameters"]["FunctionName"] == SUBSTITUTIONS["PrecheckFunctionArn"]
    assert states["Summarize"]["Parameters"]["FunctionName"] == SUBSTITUTIONS["SummarizeFunctionArn"]
    # And the replication lag's ends reach the functions: the start time to Plan, the push time to Summarize
    assert states["Plan"]["Parameters"]["Payload"]["started_at.$"] == "$$.Execution.StartTime"
    assert states["Summarize"]["Parameters"]["Payload"]["plan"]["pushed_at.$"] == "$.plan.pushed_at"
    assert inner(definition)["Record"]["Parameters"]["FunctionName"] == SUBSTITUTIONS["RecordFunctionArn"]
    assert states["Notify"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["Notify"]["Parameters"]["TopicArn"] == SUBSTITUTIONS["NotificationTopicArn"]
    # And the execution fails with the summary's error name when a target failed
    assert states["ReplicationFailed"] == {
        "Type": "Fail",
        "Comment": states["ReplicationFailed"]["Comment"],
        "Error": FAILURE_ERROR,
        "CausePath": "$.summary.failure_cause",
    }


# The per-target record, made the way the ASL makes it: the Record task runs workflow.pipeline.record.record on
# the iteration's whole state, and its output (OutputPath $.Payload) is the iteration's result.


def record_task(states: dict[str, Any], name: str, data: dict[str, Any]) -> dict[str, Any]:
    """Follow the iteration from state `name` to the Record task; returns the record it outputs."""
    assert name == "Record", name
    task = states["Record"]
    assert (task["Parameters"]["Payload.$"], task["ResultPath"], task["OutputPath"]) == (
        "$",
        "$",
        "$.Payload",
    )
    assert task.get("End") is True
    return record(data).model_dump(mode="json")


BUILDSPEC = "version: 0.2\nenv:\n  exported-variables: [RESULT]\nphases:\n  build:\n    commands:\n" + (
    '      - ecr-replicate copy "$SOURCE_IMAGE" "$DESTINATION_IMAGE" --dst-role-arn "$DST_ROLE_ARN" '
    '--result-file result.json\n      - export RESULT="$(cat result.json)"\n' * 6
)


def realistic_build(index: int, status: str, result: CopyResult | None) -> dict[str, Any]:
    """A Build as DescribeBuilds returns it (Step Functions capitalizes the keys)."""
    build_id = f"ecr-replication-copy:{index:08d}-1111-2222-3333-444444444444"
    phase_types = [
        "SUBMITTED",
        "QUEUED",
        "PROVISIONING",
        "DOWNLOAD_SOURCE",
        "INSTALL",
        "PRE_BUILD",
        "BUILD",
        "POST_BUILD",
        "UPLOAD_ARTIFACTS",
        "FINALIZING",
        "COMPLETED",
    ]
    phases = [
        {
            "PhaseType": phase,
            "PhaseStatus": status if phase == "BUILD" else "SUCCEEDED",
            "StartTime": 1714560000.123,
            "EndTime": 1714560003.456,
            "DurationInSeconds": 3,
            "Contexts": [{"StatusCode": "", "Message": ""}],
        }
        for phase in phase_types
    ]
    return {
        "Arn": f"arn:aws:codebuild:us-east-1:111111111111:build/{build_id}",
        "Id": build_id,
        "BuildNumber": index,
        "BuildStatus": status,
        "BuildComplete": True,
        "CurrentPhase": "COMPLETED",
        "ProjectName": "ecr-replication-copy",
        "Initiator": "states/ecr-replication",
        "StartTime": 1714560000.0,
        "EndTime": 1714560060.0,
        "Phases": phases,
        "Source": {"Type": "NO_SOURCE", "Buildspec": BUILDSPEC, "InsecureSsl": False},
        "SecondarySources": [],
        "SecondarySourceVersions": [],
        "Artifacts": {"Location": ""},
        "Cache": {"Type": "NO_CACHE"},
        "Environment": {
            "Type": "ARM_LAMBDA_CONTAINER",
            "Image": "aws/codebuild/amazonlinux-aarch64-lambda-standard:python3.12",
            "ComputeType": "BUILD_LAMBDA_1GB",
            "EnvironmentVariables": [
                {"Name": name, "Value": f"value-of-{name.lower()}-" + "x" * 60, "Type": "PLAINTEXT"}
                for name in (
                    "SOURCE_IMAGE",
                    "DESTINATION_IMAGE",
                    "DST_ROLE_ARN",
                    "DST_EXTERNAL_ID",
                    "INSECURE_REGISTRIES",
                )
            ],
            "PrivilegedMode": False,
            "ImagePullCredentialsType": "CODEBUILD",
        },
        "ServiceRole": "arn:aws:iam::111111111111:role/ecr-replication-copy-role",
        "Logs": {
            "GroupName": "/aws/codebuild/ecr-replication-copy",
            "StreamName": build_id.split(":")[1],
            "DeepLink": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/"
            f"log-group/$252Faws$252Fcodebuild$252Fecr-replication-copy/log-events/{build_id.split(':')[1]}",
            "CloudWatchLogsArn": "arn:aws:logs:us-east-1:111111111111:log-group:/aws/codebuild/"
            f"ecr-replication-copy:log-stream:{build_id.split(':')[1]}",
            "CloudWatchLogs": {"Status": "ENABLED"},
            "S3Logs": {"Status": "DISABLED", "EncryptionDisabled": False},
        },
        "TimeoutInMinutes": 15,
        "QueuedTimeoutInMinutes": 480,
        "EncryptionKey": "arn:aws:kms:us-east-1:111111111111:alias/aws/s3",
        "ExportedEnvironmentVariables": (
            [{"Name": "RESULT", "Value": result.model_dump_json()}] if result is not None else []
        ),
    }


def iteration_input(index: int) -> dict[str, Any]:
    """What a Map iteration holds before Copy: its item (a Target) and the Precheck's result."""
    account = f"{222222222222 + index:012d}"
    target = {
        "account": account,
        "region": "eu-west-1",
        "repository": "services/payments-api",
        "tag": "release-2024.05.01-build.1234",
        "rule": "production",
        "source_registry": "111111111111.dkr.ecr.us-east-1.amazonaws.com",
        "source_repository": "services/payments-api",
        "source_reference": "release-2024.05.01-build.1234",
        "registry": f"{account}.dkr.ecr.eu-west-1.amazonaws.com",
        "role_arn": f"arn:aws:iam::{account}:role/ecr-replication-target",
    }
    digest = "sha256:" + f"{index:02d}" * 32
    precheck = {
        "copy_needed": True,
        "record": {**{k: target[k] for k in ("account", "region", "repository", "tag")}, "status": "planned"},
        "job": {"source_image": "x", "destination_image": "y", "role_arn": target["role_arn"]},
    }
    precheck["record"]["digest"] = digest
    return {"execution": "push-1", "dry_run": False, "target": target, "precheck": precheck}


def copied_record(index: int, definition: dict[str, Any]) -> dict[str, Any]:
    state = iteration_input(index)
    digest = state["precheck"]["record"]["digest"]
    result = CopyResult(
        action="copied",
        source=f"111111111111.dkr.ecr.us-east-1.amazonaws.com/services/payments-api@{digest}",
        destination=f"{state['target']['registry']}/services/payments-api:release-2024.05.01-build.1234",
        source_digest=digest,
        destination_digest=digest,
        media_type="application/vnd.oci.image.index.v1+json",
        platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"],
        blobs_copied=12,
        blobs_skipped=3,
        bytes_copied=734_003_200,
        seconds=41.25,
        referrers_copied=2,
    )
    states = inner(definition)
    state["copy"] = {"Build": realistic_build(index, "SUCCEEDED", result)}
    assert states["Copy"]["ResultPath"] == "$.copy"
    return record_task(states, states["Copy"]["Next"], state)


def catcher_for(state: dict[str, Any], error: str) -> dict[str, Any]:
    """The first catcher of a state that matches `error` (States.ALL matches anything)."""
    return next(c for c in state["Catch"] if error in c["ErrorEquals"] or c["ErrorEquals"] == ["States.ALL"])


def caught(state: dict[str, Any], data: dict[str, Any], error: str, cause: str) -> tuple[str, dict[str, Any]]:
    """What a Catch hands its Next state: the input with the error at the catcher's ResultPath."""
    catcher = catcher_for(state, error)
    assert catcher["ResultPath"] == "$.error"
    return catcher["Next"], {**data, "error": {"Error": error, "Cause": cause}}


def failed_build_record(index: int, definition: dict[str, Any]) -> dict[str, Any]:
    states = inner(definition)
    cause = json.dumps(realistic_build(index, "FAILED", None))
    name, data = caught(states["Copy"], iteration_input(index), "States.TaskFailed", cause)
    return record_task(states, name, data)


def lambda_error_cause(error_type: str, message: str) -> str:
    """The Cause of a Lambda function error: the runtime's JSON payload, stack trace included."""
    frames = [
        f'  File "/var/task/workflow/registry/client.py", line {100 + i}, in head_manifest\n'
        f"    response = self.request('HEAD', url, headers=headers, what=what)\n"
        for i in range(25)
    ]
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": "6f1c2a4e-8f4b-4a43-9d61-8a2b4c7e9f10",
            "stackTrace": frames,
        }
    )


def failed_precheck_record(index: int, definition: dict[str, Any]) -> dict[str, Any]:
    states = inner(definition)
    data = {key: value for key, value in iteration_input(index).items() if key != "precheck"}
    message = f"111111111111.dkr.ecr.us-east-1.amazonaws.com/services/payments-api:release-{index} not found"
    name, data = caught(
        states["Precheck"], data, "ImageNotFound", lambda_error_cause("ImageNotFound", message)
    )
    return record_task(states, name, data)


def test_map_output_for_50_copied_targets_stays_well_under_64_kib(definition: dict[str, Any]) -> None:
    # Given 50 targets each copied by a build returning a realistic Build object
    records = [copied_record(index, definition) for index in range(50)]
    # Then every record is a valid TargetResult, and the Map's output is small
    assert [TargetResult.model_validate(r).status for r in records] == ["copied"] * 50
    assert records[0]["bytes_copied"] == 734_003_200
    size = len(json.dumps(records, separators=(",", ":")))
    assert size < 64 * 1024, size
    # About 480 bytes a record (each names its source, `account/region`: up to ~40 bytes of it), with
    # build_seconds and bytes_in_region (the cost estimate reads them).
    assert size < 24 * 1024, size


def test_map_output_for_50_failed_builds_stays_under_the_256_kib_state_limit(
    definition: dict[str, Any],
) -> None:
    # Given 50 targets whose builds all failed (each cause is a whole Build, as Step Functions reports it)
    records = [failed_build_record(index, definition) for index in range(50)]
    # Then each record is a CopyFailed naming the copy, and the Map's output stays small
    parsed = [TargetResult.model_validate(r) for r in records]
    assert {(r.status, r.error) for r in parsed} == {("failed", "CopyFailed")}
    assert parsed[0].digest == "sha256:" + "00" * 32
    assert parsed[0].cause is not None
    assert parsed[0].cause.startswith(
        "copy build ecr-replication-copy:00000000-1111-2222-3333-444444444444 ended FAILED in phase BUILD"
    )
    size = len(json.dumps(records, separators=(",", ":")))
    assert size < 64 * 1024, size


def test_map_output_for_50_failed_prechecks_keeps_messages_not_stack_traces(
    definition: dict[str, Any],
) -> None:
    # Given 50 targets whose Precheck raised ImageNotFound (the cause is Lambda's JSON error payload)
    records = [failed_precheck_record(index, definition) for index in range(50)]
    # Then each record keeps the error name and message only, and the Map's output stays small
    parsed = [TargetResult.model_validate(r) for r in records]
    assert parsed[7].error == "ImageNotFound"
    assert parsed[7].cause == (
        "111111111111.dkr.ecr.us-east-1.amazonaws.com/services/payments-api:release-7 not found"
    )
    size = len(json.dumps(records, separators=(",", ":")))
    assert size < 64 * 1024, size


def test_at_the_inline_limit_the_state_stays_under_256_kib_through_summarize(
    definition: dict[str, Any],
) -> None:
    # Given as many destinations as the inline Map carries, every one failed with the longest cause kept
    records = [failed_precheck_record(index, definition) for index in range(INLINE_LIMIT)]
    for failed in records:
        failed["cause"] = "x" * CAUSE_LIMIT
    plan = {"repository": "services/payments-api", "tag": "release-2024.05.01-build.1234", "dry_run": False}
    targets = [iteration_input(index)["target"] for index in range(INLINE_LIMIT)]
    # When the Map's records replace the targets, and Summarize returns its summary
    after_map = {"plan": {**plan, "targets": targets}}
    after_map["plan"]["targets"] = records
    assert definition["States"]["Replicate"]["ResultPath"] == "$.plan.targets"
    assert definition["States"]["Summarize"]["Parameters"]["Payload"]["results.$"] == "$.plan.targets"
    summary = summarize(
        [TargetResult.model_validate(r) for r in records],
        repository=plan["repository"],
        tag=plan["tag"],
        execution_arn="arn:aws:states:us-east-1:111111111111:execution:ecr-replication:push-1",
    )
    # (with the replication events' PutEvents batches Summarize returns beside it)
    after_summarize = {"summary": {**summary.model_dump(), "events": batches(summary)}}
    # Then both states fit Step Functions' 256 KiB limit, with room to spare
    for state in (after_map, after_summarize):
        assert len(json.dumps(state, separators=(",", ":"))) < 200 * 1024


def test_past_the_inline_limit_the_state_carries_locations_whatever_the_number_of_destinations(
    definition: dict[str, Any],
) -> None:
    # Given 2,000 destinations, every one failed with the longest cause kept
    count = 2000
    records = [failed_precheck_record(index % 50, definition) for index in range(count)]
    records = [
        {**r, "account": f"{200000000000 + i:012d}", "cause": "x" * CAUSE_LIMIT}
        for i, r in enumerate(records)
    ]
    targets = [Target.model_validate(iteration_input(index % 50)["target"]) for index in range(count)]
    # When the Plan's output is distributed (its targets in the bucket) and the Distributed Map writes its results
    where = S3Object(bucket="fanout-bucket", key="runs/push-1/targets.json")
    plan = Plan(
        repository="services/payments-api", tag="release-1", fan_out="distributed", targets_object=where
    )
    map_run = {
        "MapRunArn": "arn:aws:states:us-east-1:111111111111:mapRun:ecr-replication/Replicate:" + "0" * 36,
        "ResultWriterDetails": {
            "Bucket": where.bucket,
            "Key": "runs/push-1/results/" + "0" * 36 + "/manifest.json",
        },
    }
    after_map = {"plan": {**plan.model_dump(mode="json"), "map_run": map_run, "target_count": count}}
    scale = definition["States"]["ReplicateAtScale"]
    assert scale["ResultPath"] == "$.plan.map_run"
    assert scale["ItemReader"]["Parameters"] == {
        "Bucket.$": "$.plan.targets_object.Bucket",
        "Key.$": "$.plan.targets_object.Key",
    }
    results = [TargetResult.model_validate(r) for r in records]
    summary = summarize(
        results,
        repository="services/payments-api",
        tag="release-1",
        execution_arn="arn:aws:states:us-east-1:111111111111:execution:ecr-replication:push-1",
        details=RunDetails(results_uri="s3://fanout-bucket/runs/push-1/results/x/manifest.json"),
    )
    events = batches(summary, lines_of(results))
    after_summarize = {"summary": {**summary.model_dump(), "events": [], "events_object": where.model_dump()}}
    # Then the events of every destination are there (to be written to the bucket, not the state)
    assert sum(len(batch) for batch in events) == count == len(targets)
    # And both states stay small: they hold locations and a bounded summary, not a line per destination
    for state in (after_map, after_summarize):
        assert len(json.dumps(state, separators=(",", ":"))) < 64 * 1024


def test_the_distributed_map_runs_the_inline_maps_iteration_as_standard_children(
    definition: dict[str, Any],
) -> None:
    # Given both Maps of the definition
    states = definition["States"]
    inline, scale = states["Replicate"], states["ReplicateAtScale"]
    # Then the Distributed Map's children run exactly the inline iteration (Precheck -> Copy -> Record, with
    # their Retry and Catch), from the same item, with the same concurrency
    assert scale["ItemProcessor"]["States"] == inline["ItemProcessor"]["States"]
    assert scale["ItemProcessor"]["StartAt"] == inline["ItemProcessor"]["StartAt"] == "Precheck"
    assert scale["ItemSelector"] == inline["ItemSelector"]
    assert scale["MaxConcurrencyPath"] == inline["MaxConcurrencyPath"]
    # And as STANDARD child executions: CodeBuild's .sync integration is not supported in EXPRESS workflows
    assert scale["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert inline["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    # And it reads the targets from the bucket and writes every child's result there, no child failing the Map
    assert scale["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert scale["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert scale["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert scale["ResultWriter"]["Parameters"]["Prefix.$"] == "$.plan.results_prefix"
    assert scale["ToleratedFailurePercentage"] == 100
    # And the Plan's fan_out chooses between them, after the Gate too
    assert states["FanOut?"]["Choices"] == [
        {"Variable": "$.plan.fan_out", "StringEquals": "distributed", "Next": "ReplicateAtScale"}
    ]
    assert states["FanOut?"]["Default"] == "Replicate"
    assert states["Gate?"]["Default"] == states["GateWait?"]["Default"] == "FanOut?"
    # And a failed Map Run or Gate function reaches Summarize, which fails every target with the error
    assert scale["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.plan.fan_out_error", "Next": "Summarize"}
    ]
    assert states["Gate"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.plan.gate_error", "Next": "Summarize"}
    ]


def test_every_plan_field_the_definition_reads_is_in_every_plan(definition: dict[str, Any]) -> None:
    # Given every `$.plan.<field>` the definition reads
    text = json.dumps(definition)
    read = set(re.findall(r'"\$\.plan\.([A-Za-z_]+)', text))
    # Then each is a field every Plan output has (null until set), or one the Plan/Gate function adds
    # (a path to a missing field is States.Runtime, which nothing catches)
    assert read
    added = {"target_count", "max_concurrency", "gate"}
    assert read <= set(Plan().model_dump(mode="json")) | added, read - set(Plan().model_dump()) - added
    assert {"fan_out", "targets_object", "blocked_object", "map_run", "gate_error", "fan_out_error"} <= read


def test_every_iteration_error_goes_to_record_and_plan_errors_are_read_by_it(
    definition: dict[str, Any],
) -> None:
    # Given the iteration's tasks / Then every error they catch goes to Record, with the error beside the state
    states = inner(definition)
    for name in ("Precheck", "Copy"):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Record"}
        ]
    # And a failing Record function still leaves a failed record, from the target alone
    assert states["Record"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.record_error", "Next": "RecordFailed"}
    ]
    fallback = states["RecordFailed"]["Parameters"]
    assert (fallback["status"], fallback["error.$"]) == ("failed", "$.record_error.Error")
    assert {key for key, value in fallback.items() if key.endswith(".$")} == {
        "account.$",
        "region.$",
        "repository.$",
        "tag.$",
        "source.$",
        "error.$",
    }
    # And a bad input or config (or a loop it plans) is read by the same function; if that fails, the raw error
    # ends it
    top = definition["States"]
    assert [c["ErrorEquals"] for c in top["Plan"]["Catch"]] == [
        ["InvalidRequest", "DestinationNotAllowed", "InvalidConfig", "ReplicationLoop"],
        ["States.ALL"],
    ]
    assert top["Plan"]["Catch"][0]["Next"] == "ReadPlanError"
    assert top["ReadPlanError"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.read_error", "Next": "PlanFailed"}
    ]
    assert (top["InvalidInput"]["ErrorPath"], top["InvalidInput"]["CausePath"]) == (
        "$.read.error",
        "$.read.cause",
    )


def test_other_errors_keep_their_name_and_cause(definition: dict[str, Any]) -> None:
    # Given a Copy that failed with CodeBuild throttling after all retries
    states = inner(definition)
    name, data = caught(states["Copy"], iteration_input(3), "CodeBuild.ThrottlingException", "Rate exceeded")
    # Then the record carries the error and cause as they are
    result = TargetResult.model_validate(record_task(states, name, data))
    assert (result.status, result.error, result.cause) == (
        "failed",
        "CodeBuild.ThrottlingException",
        "Rate exceeded",
    )


def test_execution_has_a_timeout_so_the_timed_out_alarm_can_fire(definition: dict[str, Any]) -> None:
    # Given the definition / Then a stuck execution ends (and alarms) within 12 hours
    assert 0 < definition["TimeoutSeconds"] <= 12 * 3600


def test_notify_retries_sns_throttling_before_giving_up(definition: dict[str, Any]) -> None:
    # Given the Notify task / Then SNS throttling and internal errors are retried, with backoff and jitter
    (retry,) = definition["States"]["Notify"]["Retry"]
    assert set(retry["ErrorEquals"]) == SNS_ERRORS
    assert retry["MaxAttempts"] >= 2
    assert retry["BackoffRate"] > 1
    assert retry["JitterStrategy"] == "FULL"


def test_a_copy_that_reports_its_own_failure_becomes_a_failed_record_with_its_error(
    definition: dict[str, Any],
) -> None:
    # Given the job's RESULT is the copier's {error, message} (the build itself succeeded)
    states = inner(definition)
    state = iteration_input(4)
    build = realistic_build(4, "SUCCEEDED", None)
    message = "registry 222222222226.dkr.ecr.eu-west-1.amazonaws.com refused the upload: 403"
    build["ExportedEnvironmentVariables"] = [
        {"Name": "RESULT", "Value": json.dumps({"error": "RegistryAuthError", "message": message})}
    ]
    state["copy"] = {"Build": build}
    # When the iteration goes on from Copy
    result = TargetResult.model_validate(record_task(states, states["Copy"]["Next"], state))
    # Then the record is failed, with the copier's error name and message
    assert (result.status, result.error, result.cause) == ("failed", "RegistryAuthError", message)
    assert result.digest == "sha256:" + "04" * 32
