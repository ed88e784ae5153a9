"""The operators' access: a read-only role in each destination stack that trusts the configured principals,
and the source stack's managed policies (read, start) their permission set attaches; nothing writes."""

from __future__ import annotations

from typing import Any

import pytest

from infra import naming
from tests.infrastructure.conftest import Synthesized, resources

pytestmark = pytest.mark.infrastructure

READER = "ecr-replication-reader"
OPERATORS = ["arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_EcrOperator_*"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _reader(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (key, role)
        for key, role in resources(template, "AWS::IAM::Role").items()
        if role["Properties"]["RoleName"] == READER
    ]
    return found


def test_each_destination_stack_has_a_read_only_role_trusting_only_the_configured_operators(
    synthesized: Synthesized,
) -> None:
    for destination in synthesized.destinations:
        template = synthesized.template(destination.stack_name)
        # Given the example config's operators When its destination stack is synthesized
        key, role = _reader(template)
        # Then the reader role trusts the source account, only for a caller whose principal ARN matches a pattern
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Action"] == "sts:AssumeRole"
        assert trust["Principal"]["AWS"]["Fn::Join"][1][-1] == ":iam::111111111111:root"
        assert trust["Condition"] == {"ArnLike": {"aws:PrincipalArn": OPERATORS}}
        assert role["Properties"]["MaxSessionDuration"] == 3600
        # and may do one thing: list the images of the repositories the rules write in that account
        statements = [
            statement
            for policy in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": key} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert {a for s in statements for a in _as_list(s["Action"])} == {"ecr:DescribeImages"}
        account = destination.account
        assert sorted(
            r for s in statements for r in _as_list(s["Resource"])
        ) == naming.account_repository_arns(synthesized.settings.config, account)


def test_the_source_stack_has_the_operators_read_and_start_policies_and_neither_writes(
    synthesized: Synthesized,
) -> None:
    # Given the source stack's managed policies
    policies = {
        p["Properties"]["ManagedPolicyName"]: p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(synthesized.source_template, "AWS::IAM::ManagedPolicy").values()
    }
    read, start = naming.operator_policy_names(synthesized.settings.config)
    assert (read, start) == (
        "ecr-replication-operator-read-us-east-1",
        "ecr-replication-operator-start-us-east-1",
    )
    # Then `read` lists and reads the source and assumes the readers, nothing more
    read_actions = {a for s in policies[read] for a in _as_list(s["Action"])}
    # (the gates read manifests and signatures through the registry API: BatchGetImage, GetDownloadUrlForLayer,
    # and the tag list, checked as ListImages: tests/iam/registry_actions.py)
    assert read_actions == {
        "ecr:DescribeRepositories",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:ListImages",
        "sts:AssumeRole",
    }
    (assume,) = [s for s in policies[read] if s["Action"] == "sts:AssumeRole"]
    assert assume["Resource"] == naming.reader_role_arns(synthesized.settings.config)
    assert all(arn.endswith(f":role/{READER}") for arn in assume["Resource"])
    # and `start` starts, lists and follows runs of this state machine only
    start_actions = {a for s in policies[start] for a in _as_list(s["Action"])}
    assert start_actions == {"states:StartExecution", "states:ListExecutions", "states:DescribeExecution"}
    # and the stack says their names (what a permission set references)
    outputs = synthesized.source_template["Outputs"]
    assert (outputs["OperatorReadPolicy"]["Value"], outputs["OperatorStartPolicy"]["Value"]) == (read, start)
