"""The operator path: a person of the source account (an IAM Identity Center permission set's role) follows the
runbook (`status`, `plan`, `sync --dry-run`, `sync`, `start`), and AWS would allow every call they make.

The commands run in-process against moto with the operator's own credentials (an assumed SSO-like role of the
source account); each command's AWS calls are recorded on their own (tests/iam/recorder.py, into a file of
this test's) and checked against the synthesized app: the operator's calls against the operators' managed
policies of the source stack (read, start), each AssumeRole also against the assumed role's trust policy, and
the calls made with the assumed role's credentials against that role's policy. Nothing here is the main
coverage test's: it reads only its own records.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from moto import mock_aws

from infra import naming
from infra.app import build_app
from infra.settings import settings_from_context
from tests.iam import recorder
from tests.iam.calls import resources_of
from tests.iam.simulate import Request, evaluate
from tests.iam.templates import Stack
from tests.unit.fake_ecr import EcrManifests, push, use_moto_environment
from workflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
SOURCE, DESTINATION = "111111111111", "222222222222"
# What IAM Identity Center names a permission set's role (the path may hold the Region, or not).
OPERATOR = f"arn:aws:iam::{SOURCE}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_EcrOperator_0a1b2c3d4e5f6789"
SOMEONE_ELSE = (
    f"arn:aws:iam::{SOURCE}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Developer_0a1b2c3d4e5f6789"
)
CONFIG: dict[str, Any] = {
    "source": {"account": SOURCE, "region": "us-east-1"},
    "rules": [
        {
            "name": "production",
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [{"account": DESTINATION, "regions": ["eu-west-1", "us-west-2"]}],
            # status and sync read the gates as the Gate step does (a scan: DescribeImageScanFindings; not waited
            # for: moto has none, which the gate then allows).
            "gates": {"scan": {"block_at": "CRITICAL", "on_missing": "allow", "wait_minutes": 0}},
        }
    ],
    "notifications": {"emails": ["oncall@example.com"]},
    "operators": {
        "principals": [
            f"arn:aws:iam::{SOURCE}:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_EcrOperator_*"
        ]
    },
}
WRITER = f"arn:aws:iam::{DESTINATION}:role/ecr-replication-target"
IDLE: Any = {"stepfunctions": {"execute_state_machine": False}}
# Calls that need no permission (AWS STS API reference, GetCallerIdentity: "No permissions are required").
NO_PERMISSION = {("sts", "GetCallerIdentity")}
ECR_WRITES = {
    "PutImage",
    "BatchDeleteImage",
    "CreateRepository",
    "InitiateLayerUpload",
    "CompleteLayerUpload",
}


def _credentials(session: Any, role_arn: str) -> dict[str, str]:
    answer = session.client("sts", region_name="us-east-1").assume_role(
        RoleArn=role_arn, RoleSessionName="test"
    )
    return dict(answer["Credentials"])


def _session(credentials: dict[str, str]) -> Any:
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """moto with: the source's app {release-1, release-2} (account 111111111111), eu-west-1 holding release-1
    and release-2's digest under `old`, us-west-2 empty, a state machine; the shell holding the operator's
    credentials only."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE):
        base = boto3.Session(region_name="us-east-1")
        operator = _credentials(base, OPERATOR)
        source = _session(operator).client("ecr", region_name="us-east-1")
        source.create_repository(repositoryName="app")
        push(source, "app", "release-1", 10)
        push(source, "app", "release-2", 20)
        # The gates read the source's manifests (the platform images ECR scans) through the registry API, which
        # ECR authorizes as BatchGetImage: served here from moto's ECR, as the operator
        manifests = EcrManifests(source)
        monkeypatch.setattr("workflow.ops.status.make_client", lambda *_, **__: manifests)
        monkeypatch.setattr("workflow.ops.sync.syncer.make_client", lambda *_, **__: manifests)
        eu = _session(_credentials(base, WRITER)).client("ecr", region_name="eu-west-1")
        eu.create_repository(repositoryName="app")
        push(eu, "app", "release-1", 10)
        push(eu, "app", "old", 20)
        machine = (
            _session(operator)
            .client("stepfunctions", region_name="us-east-1")
            .create_state_machine(
                name="Workflow",
                definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
                roleArn=f"arn:aws:iam::{SOURCE}:role/sfn",
            )["stateMachineArn"]
        )
        config = tmp_path / "replication.json"
        config.write_text(json.dumps(CONFIG))
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", operator["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", operator["SecretAccessKey"])
        monkeypatch.setenv("AWS_SESSION_TOKEN", operator["SessionToken"])
        yield {"config": str(config), "machine": machine, "operator_key": operator["AccessKeyId"]}


@contextmanager
def recorded(path: Path) -> Iterator[list[dict[str, Any]]]:
    """Record the calls made inside the block to `path` (the session's file is restored after)."""
    session_file = os.environ[recorder.RECORD_ENV]
    records: list[dict[str, Any]] = []
    recorder.install(str(path))
    try:
        yield records
    finally:
        recorder.install(session_file)
        records.extend(recorder.read(str(path)))


def synthesized(tmp_path: Path) -> list[Stack]:
    """The app of CONFIG (bundling skipped: only policies are read): the source stack, then the destination's."""
    config_file = tmp_path / "synth.json"
    config_file.write_text(json.dumps(CONFIG))
    context = {"config": str(config_file), "copy_compute": "lambda", "aws:cdk:bundling-stacks": []}
    app = cdk.App(outdir=str(tmp_path / "cdk.out"), context=context)
    source, destinations = build_app(app, settings_from_context(app.node.try_get_context), nag=False)
    assembly = app.synth()
    return [
        Stack(s.stack_name, assembly.get_stack_by_name(s.stack_name).template, s.account, s.region)
        for s in [source, *destinations]
    ]


def operator_statements(stack: Stack) -> list[dict[str, Any]]:
    """The statements of the operators' two managed policies, resolved."""
    names = set(naming.operator_policy_names(json_config()))
    policies = [
        p
        for p in stack.of_type("AWS::IAM::ManagedPolicy").values()
        if p["Properties"]["ManagedPolicyName"] in names
    ]
    assert len(policies) == 2
    return [s for p in policies for s in stack.resolve(p["Properties"]["PolicyDocument"]["Statement"])]


def json_config() -> Any:
    from workflow.models.config import parse_config

    return parse_config(CONFIG)


def denials(records: list[dict[str, Any]], stacks: list[Stack], operator_key: str) -> list[str]:
    """Every recorded call AWS would refuse, in words; the calls checked are appended to `checked`."""
    assumed = {r["access_key"]: r["role_arn"] for r in records if r["kind"] == "assumed"}
    source = stacks[0]
    checks: list[tuple[str, Request]] = []
    for call in (r for r in records if r["kind"] == "call"):
        service, operation = call["signing_name"], call["operation"]
        if (service, operation) in NO_PERMISSION:
            continue
        action = f"{service}:{operation}"
        if call["access_key"] == operator_key:
            principal, account, statements = OPERATOR, SOURCE, operator_statements(source)
        else:
            principal = assumed[call["access_key"]]
            account = principal.split(":")[4]
            (stack,) = [s for s in stacks if s.account == account]
            role = stack.role_named(principal.rsplit("/", 1)[1])
            assert role is not None, principal
            statements = stack.statements(role)
        context = {"aws:PrincipalArn": principal, "aws:RequestedRegion": call["region"]}
        for resource in resources_of(service, operation, call["params"], call["region"], account):
            trust = None
            if action == "sts:AssumeRole":
                # Across accounts AWS needs both: the caller's policy allows it and the role's trust does
                (target,) = [s for s in stacks if s.account == resource.split(":")[4]]
                role = target.role_named(resource.rsplit("/", 1)[1])
                trust = tuple(target.trust(role)) if role is not None else ()
            request = Request(principal, action, resource, resource.split(":")[4] or account, tuple(statements),
                              trust, tuple(context.items()))  # fmt: skip
            checks.append((f"{principal} may not {action} on {resource}", request))
    decisions = evaluate([request for _, request in checks])
    return [
        message
        for (message, _), decision in zip(checks, decisions, strict=True)
        if decision.result != "Allowed"
    ]


def trust_request(trust: list[dict[str, Any]], role_arn: str, context: dict[str, str]) -> Request:
    """Whether `trust` (a role's trust policy) lets the caller `context` names assume the role: its own identity
    policy allows sts:AssumeRole, so only the trust decides (@cloud-copilot/iam-simulate, tests/iam/simulate.py)."""
    return Request(
        context["aws:PrincipalArn"],
        "sts:AssumeRole",
        role_arn,
        role_arn.split(":")[4],
        ({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},),
        tuple(trust),
        tuple(context.items()),
    )


def trusts(trust: list[dict[str, Any]], role_arn: str, context: dict[str, str]) -> bool:
    """One trust decision (see trust_request)."""
    [decision] = evaluate([trust_request(trust, role_arn, context)])
    return decision.result == "Allowed"


def run(path: Path, *argv: str) -> tuple[int, list[dict[str, Any]]]:
    """Run one command line as the operator, with its calls recorded apart."""
    with recorded(path) as records:
        code = main(list(argv))
    return code, records


def test_an_operator_follows_the_runbook_and_every_call_is_allowed(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, machine = world["config"], world["machine"]
    # Given an operator of the source account and the stacks synthesized from the config naming them
    stacks = synthesized(tmp_path)
    steps: dict[str, tuple[int, list[dict[str, Any]]]] = {}
    # When they follow the runbook: where is the image (status), what would a backfill do (sync --dry-run),
    # where would a tag go (plan), repair what is missing (sync), re-run one destination (start, the email's line)
    steps["status"] = run(tmp_path / "1.jsonl", "status", config, "app:release-1")
    steps["status --all"] = run(tmp_path / "2.jsonl", "status", config, "app", "--all", "--json")
    steps["plan"] = run(tmp_path / "3.jsonl", "plan", config, "--repository", "app", "--tag", "release-2")
    steps["sync --dry-run"] = run(
        tmp_path / "4.jsonl", "sync", config, "--dry-run", "--state-machine-arn", machine
    )
    steps["sync"] = run(tmp_path / "5.jsonl", "sync", config, "--no-wait", "--state-machine-arn", machine)
    steps["start"] = run(
        tmp_path / "6.jsonl",
        "start",
        "--state-machine-arn",
        machine,
        "--repository",
        "app",
        "--tag",
        "release-1",
        "--destination",
        f"{DESTINATION}:us-west-2",
        "--override-reason",
        "INC-1: runbook drill",
    )
    capsys.readouterr()
    # Then each did its job (status exits 1: release-1 is missing at us-west-2)
    assert {name: code for name, (code, _) in steps.items()} == {
        "status": 1,
        "status --all": 1,
        "plan": 0,
        "sync --dry-run": 0,
        "sync": 0,
        "start": 0,
    }
    # And AWS would allow every call they made
    records = [r for _, rs in steps.values() for r in rs]
    assert denials(records, stacks, world["operator_key"]) == []
    # And the destinations were read through the read-only role only, nothing was written there
    calls = {
        (r["signing_name"], r["operation"], r["access_key"] == world["operator_key"])
        for r in records
        if r["kind"] == "call"
    }
    assert ("sts", "AssumeRole", True) in calls
    assert ("ecr", "DescribeImages", False) in calls
    assert ("ecr", "DescribeImageScanFindings", True) in calls
    assert {("states", op, True) for op in ("StartExecution", "ListExecutions")} <= calls
    assumed = {r["role_arn"] for r in records if r["kind"] == "assumed"}
    assert assumed == {f"arn:aws:iam::{DESTINATION}:role/ecr-replication-reader"}
    assert not {op for service, op, _ in calls if service == "ecr"} & ECR_WRITES
    # and plan made no AWS call at all
    assert [r for r in steps["plan"][1] if r["kind"] == "call"] == []
    # And sync left the missing tag (release-2 at eu-west-1, digest already there) to an execution
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    inputs = [
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
    ]
    assert {
        "repository": "app",
        "tag": "release-2",
        "destinations": [
            {"account": DESTINATION, "region": "eu-west-1"},
            {"account": DESTINATION, "region": "us-west-2"},
        ],
    } in inputs


def test_the_read_only_role_trusts_only_the_configured_operators(tmp_path: Path) -> None:
    # Given the synthesized reader role
    stacks = synthesized(tmp_path)
    (destination,) = stacks[1:]
    role = destination.role_named("ecr-replication-reader")
    assert role is not None
    trust = destination.trust(role)
    # Then an operator's role is trusted, another role of the same account (or the account's writer) is not
    reader = f"arn:aws:iam::{destination.account}:role/ecr-replication-reader"
    assert trusts(trust, reader, {"aws:PrincipalArn": OPERATOR})
    assert not trusts(trust, reader, {"aws:PrincipalArn": SOMEONE_ELSE})
    # and the destination role the workflow writes with does not trust the operator
    writer = destination.role_named("ecr-replication-target")
    assert writer is not None
    target = f"arn:aws:iam::{destination.account}:role/ecr-replication-target"
    assert not trusts(destination.trust(writer), target, {"aws:PrincipalArn": OPERATOR})


RUNBOOK_COMMANDS = {"status", "sync", "start", "plan", "validate"}


def steps(runbook: str) -> str:
    """The runbook's steps: its introduction and every **Check** and **Fix** paragraph (with their lists)."""
    kept, keep = [], True
    for line in runbook.splitlines():
        if line.startswith("## "):
            keep = False
        elif line.startswith("**"):
            keep = line.startswith(("**Fix", "**Check"))
        if keep:
            kept.append(line)
    return "\n".join(kept)


def test_every_runbook_step_is_a_command_an_operator_can_run() -> None:
    # Given the runbook's steps, written for on-call (an operator of the source account)
    text = steps((ROOT / "docs" / "runbook.md").read_text())
    # Then every ecr-replicate command they name is one the operator test above ran (or validate, which is local)
    named = set(re.findall(r"ecr-replicate ([a-z-]+)", text))
    assert named
    assert named <= RUNBOOK_COMMANDS, named - RUNBOOK_COMMANDS
    # and no step asks them to act as one of the workflow's own roles, which only AWS services can assume
    for forbidden in ("precheck role", "from the source account's", "as the reconcile role"):
        assert forbidden not in text, forbidden
