"""`ecr-replicate start --override-reason`: the break-glass input carries the reason and the caller identity."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.unit.test_start import executions_of, sfn, state_machine
from workflow.cli import main

__all__ = ["sfn"]  # the fixture, used by name


def test_an_override_records_the_reason_and_who_asked(sfn: Any) -> None:
    # Given a state machine
    arn = state_machine(sfn, "echo", {"Echo": {"Type": "Pass", "End": True}})
    caller = boto3.client("sts", region_name="eu-central-1").get_caller_identity()["Arn"]
    # When a run is started with an override reason
    code = main(
        ["start", "--state-machine-arn", arn, "--repository", "app", "--tag", "release-1", "--override-reason",
         "INC-42: hotfix, CVE not reachable"]
    )  # fmt: skip
    # Then the input carries the reason and the caller's identity ARN, as the Plan state reads it
    assert code == 0
    (execution,) = executions_of(sfn, arn)
    assert json.loads(execution["input"])["override"] == {
        "reason": "INC-42: hotfix, CVE not reachable",
        "requestedBy": caller,
    }


def test_an_empty_override_reason_is_refused_before_anything_starts(
    sfn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a state machine / When an override without a reason is started
    arn = state_machine(sfn, "echo", {"Echo": {"Type": "Pass", "End": True}})
    code = main(
        ["start", "--state-machine-arn", arn, "--repository", "app", "--tag", "v1", "--override-reason", " "]
    )
    # Then it exits 2 naming the problem, and nothing started
    assert code == 2
    assert "override.reason: required" in capsys.readouterr().err
    assert executions_of(sfn, arn) == []
