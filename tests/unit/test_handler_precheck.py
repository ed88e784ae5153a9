"""lambdas.precheck: one Map iteration's Precheck, against moto (STS, ECR) with the engine at its seam."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas import precheck
from tests.unit.conftest import FakeLambdaContext
from workflow.core.exceptions import DestinationTagImmutable
from workflow.engine import copier as copy
from workflow.engine.copier import PrecheckResult

pytestmark = pytest.mark.usefixtures("aws")

ASL = Path(__file__).resolve().parents[2] / "statemachine.asl.json"
DIGEST = "sha256:" + "d" * 64
TARGET = {
    "account": "222222222222",
    "region": "eu-west-1",
    "repository": "app",
    "tag": "release-1.2.0",
    "rule": "releases",
    "source_registry": "111111111111.dkr.ecr.us-east-1.amazonaws.com",
    "source_repository": "app",
    "source_reference": "release-1.2.0",
    "registry": "222222222222.dkr.ecr.eu-west-1.amazonaws.com",
    "role_arn": "arn:aws:iam::222222222222:role/ecr-replication-target",
    "external_id": None,
    "insecure": False,
    "source_insecure": False,
    "create_repository": {
        "tag_mutability": "MUTABLE",
        "scan_on_push": False,
        "encryption": "AES256",
        "kms_key": None,
    },
}


def asl_payload_fields(state: str) -> set[str]:
    """The `$.Payload.<field>` names a state's ResultSelector reads."""
    states = json.loads(ASL.read_text(encoding="utf-8"))["States"]["Replicate"]["ItemProcessor"]["States"]
    selector = states[state]["ResultSelector"]
    return {re.fullmatch(r"\$\.Payload\.(\w+)", path)[1] for path in selector.values()}  # type: ignore[index]


def repositories_in_destination_account() -> list[str]:
    credentials = boto3.client("sts").assume_role(RoleArn=TARGET["role_arn"], RoleSessionName="test")[
        "Credentials"
    ]
    ecr = boto3.client(
        "ecr",
        region_name="eu-west-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]


def test_precheck_output_has_what_the_asl_reads_and_a_valid_record(
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: FakeLambdaContext,
    handler_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given an image the destination lacks
    monkeypatch.setattr(
        copy, "probe_destination", lambda *a, **k: PrecheckResult(action="copy-needed", digest=DIGEST)
    )
    event = {"execution": "push-7", "dry_run": False, "target": TARGET}
    # When the Precheck function runs
    output = precheck.handler(event, lambda_context)
    # Then its output carries every field the ASL selects, and says to copy the pinned digest
    assert asl_payload_fields("Precheck") <= set(output)
    assert output["copy_needed"] is True
    assert (
        output["job"]["source_image"]
        == f"111111111111.dkr.ecr.us-east-1.amazonaws.com/app:{TARGET['tag']}@{DIGEST}"
    )
    assert output["record"]["status"] == "planned"
    json.dumps(output)
    # And the destination repository now exists in the destination account
    assert repositories_in_destination_account() == ["app"]
    # And the log line has the execution as correlation id and no credentials
    logs = [r for r in handler_logs() if r.get("message") == "prechecked"]
    assert logs[0]["correlation_id"] == "push-7"
    assert logs[0]["action"] == "copy-needed"
    assert "SecretAccessKey" not in json.dumps(logs)
    assert "aws_secret_access_key" not in json.dumps(logs)


def test_the_destination_repository_is_created_under_the_rule_s_key(
    monkeypatch: pytest.MonkeyPatch, lambda_context: FakeLambdaContext
) -> None:
    # Given a rule creating destination repositories under a customer-managed key (named by key id)
    monkeypatch.setattr(
        copy, "probe_destination", lambda *a, **k: PrecheckResult(action="copy-needed", digest=DIGEST)
    )
    key = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
    settings = {"tag_mutability": "IMMUTABLE", "scan_on_push": True, "encryption": "KMS", "kms_key": key}
    target = {**TARGET, "repository": "mirror/app", "create_repository": settings}
    # When the Precheck function runs
    precheck.handler({"execution": "push-8", "dry_run": False, "target": target}, lambda_context)
    # Then the repository exists in the destination account, encrypted with that key (the IAM coverage test
    # checks what creating it needs: the destination role's grant on the key through ECR, kms:ViaService)
    credentials = boto3.client("sts").assume_role(RoleArn=TARGET["role_arn"], RoleSessionName="test")[
        "Credentials"
    ]
    ecr = boto3.client(
        "ecr",
        region_name="eu-west-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    [repository] = ecr.describe_repositories(repositoryNames=["mirror/app"])["repositories"]
    assert repository["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": key}


def test_engine_errors_propagate_under_their_class_name(
    monkeypatch: pytest.MonkeyPatch, lambda_context: FakeLambdaContext
) -> None:
    # Given the destination tag is immutable and points elsewhere
    def immutable(*args: Any, **kwargs: Any) -> PrecheckResult:
        raise DestinationTagImmutable("app:release-1.2.0 is immutable and points at sha256:other")

    monkeypatch.setattr(copy, "probe_destination", immutable)
    # When the Precheck function runs / Then the typed error propagates (the ASL's Catch records it)
    with pytest.raises(DestinationTagImmutable, match="immutable"):
        precheck.handler({"execution": "x", "dry_run": False, "target": TARGET}, lambda_context)


def test_a_malformed_target_is_rejected_naming_the_field(lambda_context: FakeLambdaContext) -> None:
    # Given a target without its role / When prechecked / Then validation names the missing field
    target = {key: value for key, value in TARGET.items() if key != "role_arn"}
    with pytest.raises(ValueError, match="role_arn"):
        precheck.handler({"execution": "x", "dry_run": False, "target": target}, lambda_context)
