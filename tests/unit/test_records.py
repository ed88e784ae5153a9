"""workflow.pipeline.record and the Record handler: whatever a state produced, a bounded record, never an exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambdas import record as record_handler
from tests.unit.conftest import FakeLambdaContext
from workflow.pipeline.record import RESULT_LIMIT, execution_error, record
from workflow.pipeline.summary import CAUSE_LIMIT, FAILURE_CAUSE_LIMIT

BUILDSPEC = Path(__file__).resolve().parents[2] / "infra" / "buildspec.yml"
DIGEST = "sha256:" + "d" * 64
TARGET = {
    "account": "222222222222",
    "region": "eu-west-1",
    "repository": "app",
    "tag": "release-1",
    "rule": "releases",
    "source_registry": "111111111111.dkr.ecr.us-east-1.amazonaws.com",
    "source_repository": "app",
    "source_reference": DIGEST,
    "registry": "222222222222.dkr.ecr.eu-west-1.amazonaws.com",
    "role_arn": "arn:aws:iam::222222222222:role/ecr-replication-target",
}
PRECHECK = {"copy_needed": True, "record": {"digest": DIGEST}, "job": {}}
COPIED = {
    "action": "copied",
    "source": f"source/app@{DIGEST}",
    "destination": "222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:release-1",
    "source_digest": DIGEST,
    "destination_digest": DIGEST,
    "media_type": "application/vnd.oci.image.index.v1+json",
    "platforms": ["linux/amd64"],
    "blobs_copied": 3,
    "blobs_skipped": 1,
    "bytes_copied": 4096,
    "seconds": 2.5,
    "referrers_copied": 0,
    "finished_at": "2026-12-01T10:00:05+00:00",
}


def after_copy(exported: Any, build_id: str = "copy:1") -> dict[str, Any]:
    """An iteration's state after a Copy whose Build exported `exported` (a list, or anything)."""
    build = {
        "Arn": f"arn:aws:codebuild:us-east-1:111111111111:build/{build_id}",
        "Id": build_id,
        "BuildStatus": "SUCCEEDED",
        "ExportedEnvironmentVariables": exported,
    }
    return {"execution": "push-1", "target": TARGET, "precheck": PRECHECK, "copy": {"Build": build}}


def result(value: str | None) -> list[dict[str, Any]]:
    return [] if value is None else [{"Name": "RESULT", "Value": value}]


def test_a_copy_result_becomes_the_copied_record() -> None:
    # Given a build that exported a well-formed CopyResult / When it is recorded
    outcome = record(after_copy(result(json.dumps(COPIED))))
    # Then the record is the copy's
    assert (outcome.status, outcome.digest, outcome.bytes_copied, outcome.blobs_copied) == (
        "copied",
        DIGEST,
        4096,
        3,
    )
    assert (outcome.account, outcome.region, outcome.error) == ("222222222222", "eu-west-1", None)
    # And when the tag was put, where the replication lag ends
    assert outcome.finished_at is not None
    assert outcome.finished_at.isoformat() == "2026-12-01T10:00:05+00:00"


def test_the_copiers_own_error_is_kept_with_its_message() -> None:
    # Given the copier's {error, message} / When recorded / Then its error name and message
    value = json.dumps({"error": "DestinationTagImmutable", "message": "app:release-1 points elsewhere"})
    outcome = record(after_copy(result(value)))
    assert (outcome.status, outcome.error, outcome.cause) == (
        "failed",
        "DestinationTagImmutable",
        "app:release-1 points elsewhere",
    )
    assert outcome.digest == DIGEST


@pytest.mark.parametrize(
    ("exported", "says"),
    [
        (result(None), "exported no RESULT"),
        ([{"Name": "RESULT"}], "exported no RESULT"),
        ("not a list", "exported no RESULT"),
        (result(""), "exported an empty RESULT"),
        (result("  \n"), "exported an empty RESULT"),
        (result('{"action": "copied", "source'), "RESULT is not JSON"),
        (result("null"), "JSON but not an object"),
        (result('"copied"'), "JSON but not an object"),
        (result('{"action": "moved"}'), "not a copy result: action: Input should be"),
        (result(json.dumps({**COPIED, "extra": 1})), "not a copy result: extra"),
        (result('{"error": ["x"], "message": "m"}'), "not an error name"),
        (result('{"error": "States.Runtime", "message": "m"}'), "not an error name"),
        (
            result(json.dumps({**COPIED, "platforms": ["p"] * RESULT_LIMIT})),
            f"more than the {RESULT_LIMIT:,}",
        ),
    ],
    ids=[
        "none",
        "no-value",
        "variables-not-a-list",
        "empty",
        "blank",
        "cut-short",
        "null",
        "a-string",
        "bad-action",
        "unknown-field",
        "error-not-a-string",
        "error-not-an-identifier",
        "too-large",
    ],
)
def test_a_bad_result_is_a_failed_record_named_copy_result_invalid(exported: Any, says: str) -> None:
    # Given a build that succeeded with a bad RESULT / When it is recorded
    outcome = record(after_copy(exported, build_id="ecr-replication-copy:42"))
    # Then it is that destination's failed record, saying what is wrong and which build
    assert (outcome.status, outcome.error) == ("failed", "CopyResultInvalid")
    assert outcome.cause is not None
    assert says in outcome.cause
    assert "ecr-replication-copy:42" in outcome.cause
    assert len(outcome.cause) <= CAUSE_LIMIT
    assert outcome.digest == DIGEST
    assert outcome.build_arn == "arn:aws:codebuild:us-east-1:111111111111:build/ecr-replication-copy:42"


def test_a_caught_precheck_error_keeps_the_message_not_the_stack_trace() -> None:
    # Given Precheck raised ImageNotFound (the cause is the runtime's JSON error payload)
    cause = json.dumps(
        {"errorType": "ImageNotFound", "errorMessage": "app:release-1 not found", "stackTrace": ["x"] * 500}
    )
    state = {"target": TARGET, "error": {"Error": "ImageNotFound", "Cause": cause}}
    # When recorded / Then the record has its name and message, no digest
    outcome = record(state)
    assert (outcome.status, outcome.error, outcome.cause, outcome.digest) == (
        "failed",
        "ImageNotFound",
        "app:release-1 not found",
        None,
    )


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        ('{"errorMessage": "RequestId: 1 Error: Task timed out after 120.00 seconds"', "RequestId: 1 Error"),
        ("x" * 40_000, "x" * 10),
        ("", "Sandbox.Timedout"),
    ],
    ids=["cut-short-json", "huge-text", "empty"],
)
def test_any_caught_cause_is_recorded_bounded(cause: str, expected: str) -> None:
    # Given a caught error whose cause is not the JSON payload (cut short, huge, empty)
    state = {"target": TARGET, "error": {"Error": "Sandbox.Timedout", "Cause": cause}}
    # When recorded / Then the record names it and its cause is bounded
    outcome = record(state)
    assert (outcome.status, outcome.error) == ("failed", "Sandbox.Timedout")
    assert outcome.cause is not None
    assert expected in outcome.cause
    assert len(outcome.cause) <= CAUSE_LIMIT


def test_a_failed_build_is_copy_failed_explained_from_the_build() -> None:
    # Given the Copy task failed with States.TaskFailed (its cause is the Build)
    build = {
        "Arn": "arn:aws:codebuild:us-east-1:111111111111:build/ecr-replication-copy:7",
        "Id": "ecr-replication-copy:7",
        "BuildStatus": "FAILED",
        "Phases": [
            {"PhaseType": "INSTALL", "PhaseStatus": "FAILED", "Contexts": [{"Message": "exit status 1"}]}
        ],
    }
    state = {
        "target": TARGET,
        "precheck": PRECHECK,
        "error": {"Error": "States.TaskFailed", "Cause": json.dumps(build)},
    }
    # When recorded / Then it is CopyFailed naming the build and the failed phase
    outcome = record(state)
    assert (outcome.error, outcome.digest) == ("CopyFailed", DIGEST)
    assert outcome.cause == "copy build ecr-replication-copy:7 ended FAILED in phase INSTALL: exit status 1"
    # And it keeps the build's ARN, so the email links the build's log
    assert outcome.build_arn == build["Arn"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {
                "Error": "InvalidRequest",
                "Cause": json.dumps({"errorMessage": "tag: required", "stackTrace": []}),
            },
            {"error": "InvalidRequest", "cause": "tag: required"},
        ),
        (
            {"Error": "InvalidRequest", "Cause": '{"errorMessage": "tag'},
            {"error": "InvalidRequest", "cause": '{"errorMessage": "tag'},
        ),
        ({}, {"error": "States.Unknown", "cause": "null"}),
    ],
    ids=["payload", "cut-short", "nothing"],
)
def test_a_plan_error_is_read_into_the_executions_error_and_cause(
    error: dict[str, str], expected: dict[str, str]
) -> None:
    # Given a Plan error as its Catch hands it on / When read / Then the Fail state's error and cause
    assert execution_error(error) == expected


def test_a_plan_error_cause_is_bounded_for_the_fail_state() -> None:
    # Given a Plan error with a huge message / Then the cause stays within what a Fail state takes
    cause = json.dumps({"errorMessage": "problem\n" * 10_000})
    read = execution_error({"Error": "InvalidConfig", "Cause": cause})
    assert len(read["cause"]) <= FAILURE_CAUSE_LIMIT


def test_the_handler_records_an_iteration_or_reads_a_plan_error(lambda_context: FakeLambdaContext) -> None:
    # Given an iteration's state after a copy, and a Plan error / When the Record function runs
    copied = record_handler.handler(after_copy(result(json.dumps(COPIED))), lambda_context)
    plan_error = record_handler.handler(
        {"Error": "InvalidRequest", "Cause": json.dumps({"errorMessage": "bad"})}, lambda_context
    )
    # Then it returns the TargetResult, and the error/cause pair
    assert (copied["status"], copied["digest"], copied["account"]) == ("copied", DIGEST, "222222222222")
    json.dumps(copied)
    assert plan_error == {"error": "InvalidRequest", "cause": "bad"}


def test_the_buildspec_refuses_to_export_a_result_the_record_function_would_refuse() -> None:
    # Given the buildspec's check before `export RESULT` / Then its limit is RESULT_LIMIT
    commands = yaml.safe_load(BUILDSPEC.read_text(encoding="utf-8"))["phases"]["build"]["commands"]
    check = next(command for command in commands if "result.json" in command and "getsize" in command)
    assert f"n > {RESULT_LIMIT}" in check
    assert commands.index(check) < next(i for i, c in enumerate(commands) if c.startswith("export RESULT"))
