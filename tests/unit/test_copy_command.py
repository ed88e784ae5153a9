"""`ecr-replicate copy`: role assumption for ECR sources and destinations, and what a defect reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from workflow.cli import main
from workflow.engine import copy as copy_command
from workflow.engine.__main__ import main as job_main
from workflow.engine.copy import ROLE_SESSION_NAME, assume_role

CREDENTIALS = {
    "Credentials": {
        "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
        "SecretAccessKey": "secret",
        "SessionToken": "token",
        "Expiration": "2030-01-01T00:00:00Z",
    }
}
ROLE = "arn:aws:iam::333333333333:role/ecr-replication-target"


def test_external_id_is_sent_when_given() -> None:
    # Given STS expecting exactly the role, session name and ExternalId
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(sts)
    stubber.add_response(
        "assume_role",
        CREDENTIALS,
        {"RoleArn": ROLE, "RoleSessionName": ROLE_SESSION_NAME, "ExternalId": "dr"},
    )
    # When the role is assumed
    with stubber:
        session = assume_role(ROLE, "dr", sts_client=sts)
    # Then the session carries the role's credentials
    stubber.assert_no_pending_responses()
    assert session.get_credentials().access_key == "ASIAEXAMPLEEXAMPLE01"


def test_no_external_id_and_no_role() -> None:
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(sts)
    stubber.add_response("assume_role", CREDENTIALS, {"RoleArn": ROLE, "RoleSessionName": ROLE_SESSION_NAME})
    with stubber:
        assert assume_role(ROLE, "", sts_client=sts) is not None
    stubber.assert_no_pending_responses()
    assert assume_role(None, "ignored") is None


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_exits_1_with_a_result_and_one_line(
    debug: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy that fails with an exception the engine does not define (a defect)
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("platform")

    monkeypatch.setattr(copy_command, "copy_image", broken)
    result_file = tmp_path / "result.json"
    # When the command runs (with or without --debug)
    argv = ["copy", "reg.example.com/app:v1", "reg.example.com/app:v1", "--result-file", str(result_file)]
    code = main([*argv, "--debug"] if debug else argv)
    # Then it exits 1, the result file says CopyFailed with the cause, and stderr ends with one line
    # naming it; the traceback is shown only with --debug
    assert code == 1
    assert json.loads(result_file.read_text()) == {
        "error": "CopyFailed",
        "message": "unexpected KeyError: 'platform'",
    }
    err = capsys.readouterr().err
    assert ("Traceback" in err) is debug
    assert err.rstrip().endswith("failed: CopyFailed: unexpected KeyError: 'platform'")
    if not debug:
        assert err.count("\n") == 1


REFS = ["reg.example.com/app:v1", "reg.example.com/app:v2"]
JOB_ARGUMENTS = {
    "bad-flag": ["copy", *REFS, "--max-parallel-blobs", "0"],
    "bad-flag-json": ["copy", *REFS, "--max-parallel-blobs", "0", "--json"],
    "bad-reference": ["copy", "not a reference", REFS[1]],
    "bad-role": ["copy", *REFS, "--dst-role-arn", "arn:aws:iam::1:role/x"],
    "partition-without-region": ["copy", *REFS, "--dst-role-arn", ROLE, "--dst-credentials-secret", "s"],
    "one-reference": ["copy", REFS[0]],
    "defect": ["copy", *REFS],
    "defect-debug": ["copy", *REFS, "--debug"],
}


@pytest.mark.parametrize("name", sorted(JOB_ARGUMENTS))
def test_the_copy_jobs_entry_answers_as_ecr_replicate_copy(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given arguments of the copy command (and, for a copy that starts, an engine failing with a defect)
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("platform")

    monkeypatch.setattr(copy_command, "copy_image", broken)
    # When the copy job's entry (`python3 -m workflow.engine`, what the buildspec runs) and `ecr-replicate` run them
    job = job_main(JOB_ARGUMENTS[name])
    job_out, job_err = capsys.readouterr()
    operator = main(JOB_ARGUMENTS[name])
    out, err = capsys.readouterr()
    # Then both exit alike and print the same (tracebacks aside, which name their own frames)
    assert job in (1, 2)
    assert (job, job_out, job_err.splitlines()[-1]) == (operator, out, err.splitlines()[-1])
    assert ("Traceback" in job_err) is ("Traceback" in err) is name.endswith("debug")


def test_the_copy_jobs_entry_runs_nothing_but_copy(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the operator's commands, When the copy job's entry is asked for one, Then it refuses in one line
    assert job_main(["sync", "examples/replication.yaml", "--local"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ecr-replicate: argument COMMAND: invalid choice: 'sync'")
    assert err.count("\n") == 1
