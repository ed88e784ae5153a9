"""Least privilege across both stacks: write actions on repository ARNs, trust only the source roles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks

from infra import naming
from infra.settings import REPOSITORY_ROOT, DeploySettings
from infra.stacks.destination_stack import DestinationStack
from tests.infrastructure.conftest import Synthesized, resources
from workflow.core.exceptions import InvalidConfig
from workflow.models.config import parse_config

pytestmark = pytest.mark.infrastructure

ECR_WRITE_ACTIONS = {
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:CreateRepository",
    "ecr:TagResource",
    "ecr:BatchDeleteImage",
    "ecr:DeleteRepository",
    "ecr:SetRepositoryPolicy",
}
# Actions AWS only authorizes on Resource "*" (no resource-level permissions).
STAR_ONLY_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _role_statements(template: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    (role_id,) = [
        k
        for k, v in resources(template, "AWS::IAM::Role").items()
        if v["Properties"].get("RoleName") == role_name
    ]
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_no_wildcard_actions_and_star_resources_only_where_aws_requires_them(
    synthesized: Synthesized,
) -> None:
    for name, template in synthesized.templates.items():
        for statement in _statements(template):
            actions = set(_as_list(statement["Action"]))
            assert not any(a in ("*", "ecr:*") for a in actions), f"{name}: {statement}"
            if "*" in _as_list(statement["Resource"]):
                assert actions <= STAR_ONLY_ACTIONS, (
                    f"{name}: Resource '*' with {actions - STAR_ONLY_ACTIONS}"
                )


def test_ecr_write_actions_are_scoped_to_repository_arns(synthesized: Synthesized) -> None:
    writes = 0
    for name, template in synthesized.templates.items():
        for statement in _statements(template):
            if not set(_as_list(statement["Action"])) & ECR_WRITE_ACTIONS:
                continue
            writes += 1
            for resource in _as_list(statement["Resource"]):
                assert isinstance(resource, str), f"{name}: {resource}"
                assert resource.startswith("arn:aws:ecr:"), f"{name}: {resource}"
                assert ":repository/" in resource, f"{name}: {resource}"
                assert not resource.endswith(":repository/*"), f"{name}: {resource}"
    assert writes  # the destination roles write


def test_source_roles_read_only_the_rules_repositories_and_assume_only_configured_roles(
    synthesized: Synthesized,
) -> None:
    config = synthesized.settings.config
    template = synthesized.source_template
    expected_reads = [
        "arn:aws:ecr:us-east-1:111111111111:repository/app",
        "arn:aws:ecr:us-east-1:111111111111:repository/services/*",
    ]
    expected_roles = [
        "arn:aws:iam::222222222222:role/ecr-replication-target",
        "arn:aws:iam::333333333333:role/ecr-replication-target",
    ]
    for role_name in (naming.copy_role_name(config), naming.precheck_role_name(config)):
        statements = _role_statements(template, role_name)
        reads = [s for s in statements if "ecr:BatchGetImage" in _as_list(s["Action"])]
        assumes = [s for s in statements if "sts:AssumeRole" in _as_list(s["Action"])]
        assert [sorted(_as_list(s["Resource"])) for s in reads] == [expected_reads]
        assert [sorted(_as_list(s["Resource"])) for s in assumes] == [expected_roles]


def _writer_role(template: dict[str, Any]) -> dict[str, Any]:
    """The destination role the source roles assume (the example config's operators add a read-only one)."""
    (role,) = [
        role
        for role in resources(template, "AWS::IAM::Role").values()
        if role["Properties"]["RoleName"] != "ecr-replication-reader"
    ]
    return role


def test_destination_trust_policy_names_only_the_source_copy_and_precheck_roles(
    synthesized: Synthesized,
) -> None:
    # (The Gate role is named too, for the source-access roles of other source accounts; it reads sources only.)
    source_roles = {
        v["Properties"]["RoleName"]
        for v in resources(synthesized.source_template, "AWS::IAM::Role").values()
        if "RoleName" in v["Properties"]
    } - {naming.gate_role_name(synthesized.settings.config)}
    for destination in synthesized.destinations:
        template = synthesized.template(destination.stack_name)
        role = _writer_role(template)
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        principal = statement["Principal"]["AWS"]["Fn::Join"][1]
        assert principal[-1] == ":iam::111111111111:root"
        principal_arns = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
        # Then the trusted ARNs are exactly the two named roles the source stack creates
        assert {arn.rsplit("/", 1)[1] for arn in principal_arns} == source_roles
        assert all(arn.startswith("arn:aws:iam::111111111111:role/") for arn in principal_arns)
        assert statement["Action"] == "sts:AssumeRole"


def test_external_id_condition_follows_the_config(synthesized: Synthesized) -> None:
    def condition(account: str) -> dict[str, Any]:
        template = synthesized.template(naming.destination_stack_name(account))
        return _writer_role(template)["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]

    assert "StringEquals" not in condition("222222222222")
    assert condition("333333333333")["StringEquals"] == {"sts:ExternalId": ["dr-replication"]}


def test_destination_role_writes_exactly_the_repositories_the_rules_can_produce(
    synthesized: Synthesized,
) -> None:
    template = synthesized.template(naming.destination_stack_name("222222222222"))
    statements = {s.get("Sid"): s for s in _statements(template)}
    expected = sorted(
        f"arn:aws:ecr:{region}:222222222222:repository/{name}"
        for region in ("eu-west-1", "us-west-2")
        for name in ("app", "services/*")
    )
    assert sorted(statements["PushAndVerify"]["Resource"]) == expected
    assert sorted(statements["EnsureRepository"]["Resource"]) == expected
    assert set(statements["PushAndVerify"]["Action"]) == {
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:DescribeImages",
    }
    mirror = synthesized.template(naming.destination_stack_name("333333333333"))
    (push,) = [s for s in _statements(mirror) if s.get("Sid") == "PushAndVerify"]
    assert push["Resource"] == "arn:aws:ecr:eu-central-1:333333333333:repository/mirror/app"


def test_copy_role_trusts_codebuild_only_for_this_account(synthesized: Synthesized) -> None:
    # Given the source stack's copy role
    config = synthesized.settings.config
    (role,) = [
        v
        for v in resources(synthesized.source_template, "AWS::IAM::Role").values()
        if v["Properties"].get("RoleName") == naming.copy_role_name(config)
    ]
    # When its trust policy is read
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    # Then only CodeBuild may assume it, and only on behalf of this account
    assert statement["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": config.source.account}}


def _deletes_destination(outdir: Path, opted: list[bool]) -> list[dict[str, Any]]:
    """The destination role's statements for rules `team-<i>` (repositories `team-<i>/*`) to 222222222222,
    rule i with propagate_deletes `opted[i]` (cdk-nag enforcing at synth)."""
    config = parse_config(
        {
            "source": {"account": "111111111111", "region": "us-east-1"},
            "rules": [
                {
                    "name": f"team-{index}",
                    "repositories": [f"team-{index}/*"],
                    "tags": {"include": ["v*"]},
                    "destinations": [{"account": "222222222222", "regions": ["eu-west-1", "us-west-2"]}],
                    "propagate_deletes": deletes,
                }
                for index, deletes in enumerate(opted)
            ],
        }
    )
    settings = DeploySettings(config_path=REPOSITORY_ROOT, config=config, emails=())
    app = cdk.App(outdir=str(outdir))
    DestinationStack(
        app,
        "Destination",
        settings=settings,
        account="222222222222",
        env=cdk.Environment(account="222222222222", region="eu-west-1"),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return _statements(json.loads((outdir / "Destination.template.json").read_text()))


def _granting(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in _as_list(s["Action"])]


def test_batch_delete_image_is_granted_only_on_the_repositories_of_rules_that_opt_in(tmp_path: Path) -> None:
    # Given two rules to one account, only team-1 propagating deletes / When synthesized
    statements = _deletes_destination(tmp_path, [False, True])
    # Then one statement grants BatchDeleteImage (and nothing else), on team-1's repositories only
    (grant,) = _granting(statements, "ecr:BatchDeleteImage")
    assert grant["Action"] == "ecr:BatchDeleteImage"
    assert sorted(_as_list(grant["Resource"])) == [
        f"arn:aws:ecr:{region}:222222222222:repository/team-1/*" for region in ("eu-west-1", "us-west-2")
    ]


def test_without_propagate_deletes_no_role_may_delete(tmp_path: Path, synthesized: Synthesized) -> None:
    # Given rules that do not opt in (a synthesized example app, and a small config) / When synthesized
    # Then no statement of any stack grants BatchDeleteImage
    assert not _granting(_deletes_destination(tmp_path, [False, False]), "ecr:BatchDeleteImage")
    for template in synthesized.templates.values():
        assert not _granting(_statements(template), "ecr:BatchDeleteImage")


KEY_ARN = "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _kms_destination(outdir: Path, create_repository: dict[str, Any]) -> dict[str, Any]:
    """The destination template of a rule creating repositories in eu-west-1 with `create_repository`."""
    config = parse_config(
        {
            "source": {"account": "111111111111", "region": "us-east-1"},
            "rules": [
                {
                    "name": "encrypted",
                    "repositories": ["app"],
                    "tags": {"include": ["v*"]},
                    "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                    "create_repository": create_repository,
                }
            ],
        }
    )
    settings = DeploySettings(config_path=REPOSITORY_ROOT, config=config, emails=())
    app = cdk.App(outdir=str(outdir))
    DestinationStack(
        app,
        "Destination",
        settings=settings,
        account="222222222222",
        env=cdk.Environment(account="222222222222", region="eu-west-1"),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return dict(json.loads((outdir / "Destination.template.json").read_text()))


@pytest.mark.parametrize("kms_key", [KEY_ARN, "1234abcd-12ab-34cd-56ef-1234567890ab"])
def test_kms_repositories_grant_the_key_to_ecr_only(tmp_path: Path, kms_key: str) -> None:
    # Given a rule creating KMS-encrypted repositories with a customer-managed key (ARN or id)
    template = _kms_destination(tmp_path, {"encryption": "KMS", "kms_key": kms_key})
    # When the destination role's statements are read (cdk-nag enforcing at synth)
    keys = [s for s in _statements(template) if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    # Then the role may create grants on exactly that key, and only through ECR in the Region
    (statement,) = keys
    assert sorted(statement["Action"]) == ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"]
    assert statement["Resource"] == KEY_ARN
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "ecr.eu-west-1.amazonaws.com"}}


@pytest.mark.parametrize("create_repository", [{"encryption": "KMS"}, {"encryption": "AES256"}])
def test_aws_managed_or_s3_encryption_needs_no_kms_permission(
    tmp_path: Path, create_repository: dict[str, Any]
) -> None:
    # Given ECR's AWS-managed key or AES256 When synthesizing Then the role has no KMS action
    template = _kms_destination(tmp_path, create_repository)
    assert not [a for s in _statements(template) for a in _as_list(s["Action"]) if a.startswith("kms:")]


def test_kms_key_alias_is_refused(tmp_path: Path) -> None:
    # Given a key named by alias When loading the config (validate and synth alike) Then the setting is named
    with pytest.raises(InvalidConfig, match=re.escape("rules[0].create_repository.kms_key: 'alias/ecr'")):
        _kms_destination(tmp_path, {"encryption": "KMS", "kms_key": "alias/ecr"})


def test_the_state_machine_may_put_events_on_the_default_bus_only(synthesized: Synthesized) -> None:
    # Given the state machine role's statements
    template = synthesized.source_template
    (role_id,) = [
        k
        for k, v in resources(template, "AWS::IAM::Role").items()
        if v["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].get("Service")
        == "states.amazonaws.com"
    ]
    statements = [
        s
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    # Then events:PutEvents is granted once, on this account's default event bus, and no other events write
    put = [s for s in statements if "events:PutEvents" in _as_list(s["Action"])]
    assert len(put) == 1
    assert _as_list(put[0]["Action"]) == ["events:PutEvents"]
    (resource,) = _as_list(put[0]["Resource"])
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "111111111111"}
    arn = "".join(p if isinstance(p, str) else pseudo[p["Ref"]] for p in resource["Fn::Join"][1])
    assert re.fullmatch(r"arn:aws:events:[a-z]{2}(-[a-z]+)+-\d:\d{12}:event-bus/default", arn), arn
