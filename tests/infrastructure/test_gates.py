"""Promotion gates in the source stack: the Gate Lambda, and its permissions only with gates, only on gated repositories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.app import build_app
from infra.naming import SOURCE_STACK_NAME
from infra.settings import REPOSITORY_ROOT, settings_from_context
from tests.infrastructure.conftest import Synthesized, resources

pytestmark = pytest.mark.infrastructure

GATE_HANDLER = "lambdas.gate.handler"
GATE_ACTIONS = {"ecr:DescribeImageScanFindings", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
REPOSITORY = "arn:aws:ecr:us-east-1:111111111111:repository/"
PROFILE = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/release_signing"
KEY = (REPOSITORY_ROOT / "tests" / "unit" / "data" / "gates" / "cosign.pub").read_text()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], handler: str) -> list[dict[str, Any]]:
    """Every policy statement of the role the Lambda running `handler` runs as."""
    (function,) = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def grants(statements: list[dict[str, Any]], action: str) -> list[str]:
    """The resources `action` is allowed on."""
    return sorted(
        resource
        for s in statements
        if s["Effect"] == "Allow" and action in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    )


@pytest.fixture(scope="module")
def gated_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Gates on `production` (app, services/*: scan and cosign) and `signed` (signed: ECR managed signing),
    none on `tools`; synthesized with cdk-nag enforcing."""
    workdir = tmp_path_factory.mktemp("gated")
    rule = {"tags": {"include": ["release-*"]}}
    config = {
        "source": {"account": "111111111111", "region": "us-east-1"},
        "rules": [
            {
                **rule,
                "name": "production",
                "repositories": ["app", "services/*"],
                "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                "gates": {"scan": {"block_at": "HIGH"}, "signature": {"cosign_keys": [KEY]}},
            },
            {
                **rule,
                "name": "signed",
                "repositories": ["signed"],
                "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                "gates": {"signature": {"ecr_managed_signing": {"signing_profile_arn": PROFILE}}},
            },
            {
                **rule,
                "name": "tools",
                "repositories": ["tools"],
                "destinations": [{"account": "333333333333", "regions": ["eu-central-1"]}],
            },
        ],
        "notifications": {"emails": ["platform-team@example.com"], "on": "failure"},
    }
    config_file = workdir / "replication.json"
    config_file.write_text(json.dumps(config))
    app = cdk.App(
        outdir=str(workdir / "cdk.out"), context={"config": str(config_file), "copy_compute": "lambda"}
    )
    build_app(app, settings_from_context(app.node.try_get_context))
    app.synth()
    return dict(json.loads((Path(workdir / "cdk.out") / f"{SOURCE_STACK_NAME}.template.json").read_text()))


def test_without_gates_no_role_may_read_scan_findings(synthesized: Synthesized) -> None:
    # Given the example config, which has no gates / When synthesized
    template = synthesized.source_template
    # Then no role anywhere is granted DescribeImageScanFindings, and the Gate role only writes its logs
    everything = [
        s
        for policy in resources(template, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert grants(everything, "ecr:DescribeImageScanFindings") == []
    gate_actions = {a for s in role_statements(template, GATE_HANDLER) for a in _as_list(s["Action"])}
    assert not gate_actions & (GATE_ACTIONS | {"ecr:GetAuthorizationToken"}), gate_actions


def test_with_gates_the_gate_and_reconcile_roles_read_only_the_gated_repositories(
    gated_template: dict[str, Any],
) -> None:
    # Given a config gating `production` (app, services/*) and `signed` but not `tools` / When synthesized
    scanned = [f"{REPOSITORY}app", f"{REPOSITORY}services/*"]
    gated = [*scanned, f"{REPOSITORY}signed"]
    # Then the Gate role and the reconcile role (sync applies the same gates) read scans of exactly the
    # scan-gated repositories, and signatures of exactly the gated ones
    for handler in (GATE_HANDLER, "lambdas.reconcile.handler"):
        statements = role_statements(gated_template, handler)
        assert grants(statements, "ecr:DescribeImageScanFindings") == scanned, handler
        assert set(gated) <= set(grants(statements, "ecr:BatchGetImage")), handler
        assert set(gated) <= set(grants(statements, "ecr:GetDownloadUrlForLayer")), handler
        assert grants(statements, "ecr:GetAuthorizationToken") == ["*"], handler
    # And the Gate role reads nothing else: not `tools`, and no write or role assumption
    gate = role_statements(gated_template, GATE_HANDLER)
    assert grants(gate, "ecr:BatchGetImage") == gated
    actions = {a for s in gate for a in _as_list(s["Action"])}
    assert {a for a in actions if a.startswith(("ecr:", "sts:"))} == GATE_ACTIONS | {
        "ecr:GetAuthorizationToken",
        "ecr:DescribeImageSigningStatus",
    }
    # And the other roles gain no scan read
    for handler in ("lambdas.precheck.handler", "lambdas.plan.handler", "lambdas.summarize.handler"):
        assert grants(role_statements(gated_template, handler), "ecr:DescribeImageScanFindings") == []


def test_enhanced_findings_and_managed_signing_status_are_readable_to_the_gates_only(
    gated_template: dict[str, Any],
) -> None:
    # Given the gated config (scan gates on `production`, an ECR managed signing policy on `signed`)
    for handler in (GATE_HANDLER, "lambdas.reconcile.handler"):
        statements = role_statements(gated_template, handler)
        # Then the roles applying gates may read enhanced (Inspector) findings, which ECR requires for
        # DescribeImageScanFindings under enhanced scanning (AWS documents it with Resource "*")
        assert grants(statements, "inspector2:ListFindings") == ["*"], handler
        # And the signing status of exactly the repositories of the managed signing policy
        assert grants(statements, "ecr:DescribeImageSigningStatus") == [f"{REPOSITORY}signed"], handler
    # And no other role may
    for handler in ("lambdas.precheck.handler", "lambdas.plan.handler", "lambdas.summarize.handler"):
        statements = role_statements(gated_template, handler)
        assert grants(statements, "ecr:DescribeImageSigningStatus") == [], handler
        assert grants(statements, "inspector2:ListFindings") == [], handler


def test_the_state_machine_invokes_the_gate_function(gated_template: dict[str, Any]) -> None:
    # Given the gated stack / Then the state machine's definition names the Gate function, and its role may invoke it
    (machine,) = resources(gated_template, "AWS::StepFunctions::StateMachine").values()
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    (gate_id,) = [
        k
        for k, f in resources(gated_template, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == GATE_HANDLER
    ]
    assert substitutions["GateFunctionArn"] == {"Fn::GetAtt": [gate_id, "Arn"]}
