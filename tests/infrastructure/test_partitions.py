"""Destinations in another partition: the source roles read exactly the configured credentials secrets, and
each destination stack is deployed in its own partition, trusting the principal the config names."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
import yaml

from infra import naming
from infra.app import build_app
from infra.settings import settings_from_context
from tests.infrastructure.conftest import Synthesized, resources

CN_SECRET = "arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-replication/cn-??????"
GOV_SECRET = "arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-replication/gov-AbCdEf"
KEY = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CN_USER = "arn:aws-cn:iam::333333333333:user/ecr-replication"
GOV_USER = "arn:aws-us-gov:iam::444444444444:user/ecr-replication"
EUSC_SECRET = "arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-replication/eusc-??????"
EUSC_USER = "arn:aws-eusc:iam::555555555555:user/ecr-replication"
CONFIG = {
    "source": {"account": "111111111111", "region": "us-east-1"},
    "rules": [
        {
            "name": "partitions",
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {"account": "222222222222", "regions": ["eu-west-1"]},
                {
                    "account": "333333333333",
                    "regions": ["cn-north-1", "cn-northwest-1"],
                    "credentials": {
                        "secret": "ecr-replication/cn",
                        "principal": CN_USER,
                        "kms_key": "1234abcd-12ab-34cd-56ef-1234567890ab",
                    },
                },
                {
                    "account": "444444444444",
                    "regions": ["us-gov-west-1"],
                    "external_id": "gov-replication",
                    "credentials": {"secret": GOV_SECRET, "principal": GOV_USER},
                },
                {
                    # The AWS European Sovereign Cloud: ECR and STS are offered in eusc-de-east-1.
                    "account": "555555555555",
                    "regions": ["eusc-de-east-1"],
                    "credentials": {"secret": "ecr-replication/eusc", "principal": EUSC_USER},
                },
            ],
            "create_repository": {"encryption": "KMS", "kms_key": "abcd1234-12ab-34cd-56ef-1234567890ab"},
        }
    ],
}
# Logical ids of the roles that reach destinations: the precheck Lambda's, the copy project's, the reconcile Lambda's.
REACHING_ROLES = ("FunctionsPrecheckRole", "CopyRole", "ReconciliationFunctionRole")


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], str]]:
    """The app synthesized (cdk-nag enforcing) from a config with aws-cn, aws-us-gov and aws-eusc destinations:
    each stack's template and Region, by stack name."""
    workdir = tmp_path_factory.mktemp("partitions")
    config = workdir / "replication.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    context = {"config": str(config), "copy_compute": "lambda", "aws:cdk:bundling-stacks": []}
    app = cdk.App(outdir=str(workdir / "cdk.out"), context=context)
    source, destinations = build_app(app, settings_from_context(app.node.try_get_context))
    assembly = app.synth()
    return {
        s.stack_name: (assembly.get_stack_by_name(s.stack_name).template, s.region)
        for s in [source, *destinations]
    }


def statements_by_role(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every identity-policy statement of a template, by the logical id of the role it is attached to."""
    found: dict[str, list[dict[str, Any]]] = {}
    for policy in resources(template, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            found.setdefault(role["Ref"], []).extend(policy["Properties"]["PolicyDocument"]["Statement"])
    for role_id, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            found.setdefault(role_id, []).extend(policy["PolicyDocument"]["Statement"])
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_without_credentials_no_role_may_read_a_secret(synthesized: Synthesized) -> None:
    """Given the example config (no destination in another partition)
    When synthesized
    Then no statement of any stack names Secrets Manager, or KMS through Secrets Manager."""
    text = json.dumps(synthesized.templates)
    assert "secretsmanager:" not in text
    assert "secretsmanager." not in text


def test_exactly_the_three_source_roles_may_read_exactly_the_configured_secrets(
    partitioned: dict[str, tuple[dict[str, Any], str]],
) -> None:
    """Given destinations in aws-cn (secret by name, with a customer key), aws-us-gov (secret by ARN) and
    aws-eusc (secret by name)
    When synthesized
    Then the precheck, copy and reconcile roles, and no other, may GetSecretValue on exactly those three
    secrets, and Decrypt with exactly that key only through Secrets Manager in us-east-1."""
    template, _ = partitioned[naming.SOURCE_STACK_NAME]
    readers = {}
    for role_id, statements in statements_by_role(template).items():
        for statement in statements:
            if any(a.startswith("secretsmanager:") for a in actions(statement)):
                assert actions(statement) == ["secretsmanager:GetSecretValue"]
                readers[role_id] = sorted(listed(statement["Resource"]))
    assert sorted(
        prefix for prefix in REACHING_ROLES for role_id in readers if role_id.startswith(prefix)
    ) == sorted(REACHING_ROLES)
    assert len(readers) == 3
    assert all(resources_ == sorted([CN_SECRET, GOV_SECRET, EUSC_SECRET]) for resources_ in readers.values())
    decrypts = [
        (role_id, statement)
        for role_id, statements in statements_by_role(template).items()
        for statement in statements
        if statement.get("Sid", "").startswith("DecryptPartitionCredentials")
    ]
    assert sorted(role_id for role_id, _ in decrypts) == sorted(readers)
    for _, statement in decrypts:
        assert actions(statement) == ["kms:Decrypt"]
        assert statement["Resource"] == KEY
        assert statement["Condition"] == {
            "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
        }


def test_source_roles_assume_only_the_roles_of_their_own_partition(
    partitioned: dict[str, tuple[dict[str, Any], str]],
) -> None:
    """Given the same config When synthesized
    Then sts:AssumeRole names the aws destination role only: no role of another partition can be assumed."""
    template, _ = partitioned[naming.SOURCE_STACK_NAME]
    assumable = {
        resource
        for statements in statements_by_role(template).values()
        for statement in statements
        if "sts:AssumeRole" in actions(statement)
        for resource in listed(statement["Resource"])
    }
    assert assumable == {"arn:aws:iam::222222222222:role/ecr-replication-target"}


@pytest.mark.parametrize(
    ("account", "region", "partition", "principal", "condition"),
    [
        ("333333333333", "cn-north-1", "aws-cn", CN_USER, None),
        ("444444444444", "us-gov-west-1", "aws-us-gov", GOV_USER, {"StringEquals": {"sts:ExternalId": ["gov-replication"]}}),
        ("555555555555", "eusc-de-east-1", "aws-eusc", EUSC_USER, None),
    ],
)  # fmt: skip
def test_a_destination_stack_in_another_partition_trusts_its_principal_and_names_its_partition(
    partitioned: dict[str, tuple[dict[str, Any], str]],
    account: str,
    region: str,
    partition: str,
    principal: str,
    condition: dict[str, Any] | None,
) -> None:
    """Given a destination account in aws-cn, aws-us-gov or aws-eusc
    When its stack is synthesized
    Then it deploys to a Region of that partition, its role trusts only the configured principal (with
    the ExternalId where configured), and every ARN and ViaService host it names is that partition's."""
    template, stack_region = partitioned[naming.destination_stack_name(account)]
    assert stack_region == region
    (role,) = resources(template, "AWS::IAM::Role").values()
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": principal}
    assert trust.get("Condition") == condition
    statements = [s for group in statements_by_role(template).values() for s in group]
    arns = [r for s in statements for r in listed(s["Resource"]) if r != "*"]
    assert arns
    assert all(arn.startswith(f"arn:{partition}:") for arn in arns)
    suffix = {"aws-cn": "amazonaws.com.cn", "aws-eusc": "amazonaws.eu"}.get(partition, "amazonaws.com")
    via = [s["Condition"]["StringEquals"]["kms:ViaService"] for s in statements if "Condition" in s]
    assert via
    assert all(host.startswith("ecr.") and host.endswith(f".{suffix}") for host in via)
    # And the stack's description names who writes there: the user of that partition, not the source
    assert template["Description"] == (
        "ECR filtered replication: the configured user of this partition assumes to write here"
    )


def test_a_partition_config_synthesizes_with_cdk_nag_clean(
    partitioned: dict[str, tuple[dict[str, Any], str]],
) -> None:
    """Given the partition config When synthesized with cdk-nag's AwsSolutions pack enforcing (the fixture)
    Then synthesis succeeded, producing the source and the four destination stacks."""
    assert sorted(partitioned) == sorted(
        [
            naming.SOURCE_STACK_NAME,
            *(
                naming.destination_stack_name(a)
                for a in ("222222222222", "333333333333", "444444444444", "555555555555")
            ),
        ]
    )
