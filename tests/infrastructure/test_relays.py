"""regional_seeds: a relay stack per seeded Region (source account), one relay role in the source stack that may assume
only the seeded destinations' roles, the copy role may invoke only the relays, and the destination roles trust it."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
import yaml

from infra import naming
from infra.app import build_app
from infra.settings import settings_from_context
from tests.infrastructure.conftest import resources
from tests.infrastructure.test_partitions import statements_by_role

pytestmark = pytest.mark.infrastructure

SOURCE = {"account": "111111111111", "region": "us-east-1"}
CONFIG = {
    "source": SOURCE,
    "rules": [
        {
            "name": "fleet",
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {"account": "222222222222", "regions": ["eu-west-1", "us-east-1"]},
                {"account": "333333333333", "regions": ["eu-west-1", "ap-southeast-2"]},
            ],
        }
    ],
    "regional_seeds": True,
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], str, str]]:
    """Each stack's template, account and Region, by name (cdk-nag enforcing)."""
    workdir = tmp_path_factory.mktemp("relays")
    config = workdir / "replication.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    context = {"config": str(config), "copy_compute": "lambda", "aws:cdk:bundling-stacks": []}
    app = cdk.App(outdir=str(workdir / "cdk.out"), context=context)
    build_app(app, settings_from_context(app.node.try_get_context))
    assembly = app.synth()
    return {s.stack_name: (s.template, s.environment.account, s.environment.region) for s in assembly.stacks}


def test_a_relay_stack_per_seeded_region_in_the_source_account(seeded: dict[str, Any]) -> None:
    relays = {
        name: (account, region)
        for name, (_, account, region) in seeded.items()
        if name.startswith("EcrReplicationRelay-")
    }
    # Every destination Region but the source's own, in the source account
    assert relays == {
        "EcrReplicationRelay-eu-west-1": ("111111111111", "eu-west-1"),
        "EcrReplicationRelay-ap-southeast-2": ("111111111111", "ap-southeast-2"),
    }
    template = seeded["EcrReplicationRelay-eu-west-1"][0]
    [function] = resources(template, "AWS::Lambda::Function").values()
    properties = function["Properties"]
    assert properties["FunctionName"] == "ecr-replication-relay"
    assert properties["Handler"] == "lambdas.relay.handler"
    assert properties["Timeout"] == 900
    assert ":role/ecr-replication-relay-us-east-1" in json.dumps(properties["Role"])
    assert not resources(template, "AWS::IAM::Role")  # it runs as the source stack's relay role


def test_the_relay_role_assumes_only_seeded_destination_roles_and_reads_no_source(
    seeded: dict[str, Any],
) -> None:
    template = seeded[naming.SOURCE_STACK_NAME][0]
    [(role_id, role)] = [
        (k, v)
        for k, v in resources(template, "AWS::IAM::Role").items()
        if v["Properties"].get("RoleName") == "ecr-replication-relay-us-east-1"
    ]
    statements = statements_by_role(template)[role_id]
    actions = {
        a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert actions == {"sts:AssumeRole", "logs:CreateLogStream", "logs:PutLogEvents"}
    [assume] = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    assert len(assume["Resource"]) == 2  # the two accounts' roles (both have a seeded Region)
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_the_copy_role_invokes_only_the_relays(seeded: dict[str, Any]) -> None:
    template = seeded[naming.SOURCE_STACK_NAME][0]
    [copy_id] = [
        k
        for k, v in resources(template, "AWS::IAM::Role").items()
        if v["Properties"].get("RoleName") == "ecr-replication-copy-us-east-1"
    ]
    [invoke] = [s for s in statements_by_role(template)[copy_id] if s.get("Sid") == "InvokeRelays"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert sorted(invoke["Resource"]) == [
        "arn:aws:lambda:ap-southeast-2:111111111111:function:ecr-replication-relay",
        "arn:aws:lambda:eu-west-1:111111111111:function:ecr-replication-relay",
    ]


def test_the_destination_roles_trust_the_relay_role(seeded: dict[str, Any]) -> None:
    template = seeded["EcrReplicationDestination-333333333333"][0]
    [role] = resources(template, "AWS::IAM::Role").values()
    trusted = json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    assert "role/ecr-replication-relay-us-east-1" in trusted
    assert "role/ecr-replication-copy-us-east-1" in trusted
