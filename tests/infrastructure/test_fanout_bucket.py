"""The fan-out bucket of the source stack: encrypted with the stack's key, TLS only, private, logged, expiring;
only the functions and the state machine that use it may touch `runs/*`, and the state machine may start, describe
and stop its own Distributed Map children."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infrastructure.conftest import Synthesized, resources
from tests.infrastructure.test_partitions import statements_by_role

pytestmark = pytest.mark.infrastructure


def buckets(template: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(fan-out bucket id, its properties, the access-log bucket's properties)."""
    found = resources(template, "AWS::S3::Bucket")
    fanout = {k: v for k, v in found.items() if "LoggingConfiguration" in v["Properties"]}
    [(bucket_id, bucket)] = fanout.items()
    [logs] = [v for k, v in found.items() if k != bucket_id]
    return bucket_id, bucket["Properties"], logs["Properties"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return set(value if isinstance(value, list) else [value])


def role_of_handler(template: dict[str, Any], handler: str) -> str:
    [function] = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    ]
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def test_the_bucket_is_kms_encrypted_tls_only_private_logged_and_expiring(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    bucket_id, bucket, logs = buckets(template)
    # SSE-KMS with the stack's own key and a bucket key
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    [key_id] = resources(template, "AWS::KMS::Key")
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert rule["BucketKeyEnabled"] is True
    # public access blocked, objects owned by the bucket owner, server access logs to the log bucket
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "fanout/"
    # every run's objects expire, and so do the logs
    [expiry] = bucket["LifecycleConfiguration"]["Rules"]
    assert (expiry["Prefix"], expiry["ExpirationInDays"], expiry["Status"]) == ("runs/", 30, "Enabled")
    assert logs["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90
    # and a request without TLS is denied
    [policy] = [
        p["Properties"]["PolicyDocument"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    denied = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert denied[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_functions_and_state_machine_that_use_it_touch_runs(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    bucket_id, _, _ = buckets(template)
    runs = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/runs/*"]]}
    by_role = statements_by_role(template)
    expected = {
        role_of_handler(template, "lambdas.plan.handler"): {"s3:PutObject"},
        role_of_handler(template, "lambdas.gate.handler"): {"s3:GetObject", "s3:PutObject"},
        role_of_handler(template, "lambdas.summarize.handler"): {"s3:GetObject", "s3:PutObject"},
    }
    [machine] = resources(template, "AWS::StepFunctions::StateMachine").values()
    machine_role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    expected[machine_role] = {
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
    }
    touching = {
        role: set().union(*(actions(s) for s in statements if "s3:" in json.dumps(s.get("Action"))))
        for role, statements in by_role.items()
        if any(runs in as_list(s.get("Resource")) for s in statements)
    }
    assert touching == expected
    # And every bucket grant is on runs/* only, never the whole bucket
    bucket_arn = {"Fn::GetAtt": [bucket_id, "Arn"]}
    for statements in by_role.values():
        for statement in statements:
            if statement.get("Sid") in ("FanOutObjects", "DistributedMapObjects"):
                assert statement["Resource"] in (runs, [runs])
            if statement.get("Sid") in ("FanOutObjectsKey", "DistributedMapObjectsKey"):
                # the key is usable only through S3
                assert "kms:ViaService" in statement["Condition"]["StringEquals"]
            assert statement.get("Resource") != bucket_arn


def test_the_state_machine_starts_describes_and_stops_only_its_own_children(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    [(machine_id, machine)] = resources(template, "AWS::StepFunctions::StateMachine").items()
    statements = statements_by_role(template)[machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]]
    [start] = [s for s in statements if "states:StartExecution" in actions(s)]
    assert start["Resource"] == {"Ref": machine_id}
    [watch] = [s for s in statements if "states:DescribeExecution" in actions(s)]
    assert actions(watch) == {"states:DescribeExecution", "states:StopExecution"}
    text = json.dumps(watch["Resource"])
    assert text.count(f'"{machine_id}", "Name"') == 2
    assert ":execution:" in text
    assert "/*" in text


def test_the_functions_are_told_the_bucket(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    bucket_id, _, _ = buckets(template)
    told = {
        f["Properties"]["Handler"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Environment", {}).get("Variables", {}).get("FANOUT_BUCKET")
        == {"Ref": bucket_id}
    }
    assert told == {"lambdas.plan.handler", "lambdas.gate.handler", "lambdas.summarize.handler"}
