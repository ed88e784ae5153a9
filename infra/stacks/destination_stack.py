"""EcrReplicationDestination-<account>: the role the source copy and precheck roles assume, and (with
`operators` in the config) a read-only role the operators of the source account assume.

A destination account in another partition (aws-cn, aws-us-gov, aws-eusc) is deployed in its own partition, and
its role trusts the IAM user(s) the config names as `credentials.principal` there instead: no role of
the source can be assumed across partitions.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import naming
from infra.constructs.functions import acknowledge
from infra.settings import DeploySettings, SettingsError
from workflow.core.partitions import partition_of
from workflow.models.config import KEY_ARN_RE, DestinationConfig, Operators

PUSH_ACTIONS = [
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
]
VERIFY_ACTIONS = [
    "ecr:BatchGetImage",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:DescribeImages",
]
# With regional_seeds, the relay reads a Region's seed through the seed's own destination role, and the copy
# engine lists the tags of the repository it reads from (a referrer's tag-schema fallback: GET /v2/<name>/tags/list).
# ECR's pages name no action for the registry API's tag list; it is granted as ecr:ListImages, the API that lists a
# repository's tags (ECR API reference, ListImages:
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ListImages.html), as tests/iam/registry_actions.py
# checks it.
SEED_READ_ACTIONS = ["ecr:ListImages"]
CREATE_ACTIONS = ["ecr:CreateRepository", "ecr:DescribeRepositories"]
# The operators' read-only role: status and sync list each destination repository once (DescribeImages).
READ_ACTIONS = ["ecr:DescribeImages"]
# Deletions that follow: BatchDeleteImage by tag, granted only on the repositories of rules that opt in.
DELETE_ACTIONS = ["ecr:BatchDeleteImage"]
# CreateRepository with a customer-managed key: ECR describes the key and creates grants on it.
KEY_ACTIONS = ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"]
MAX_SESSION = cdk.Duration.hours(1)


def destination_region(settings: DeploySettings, account: str) -> str:
    """The Region the destination stack of `account` deploys to (IAM is global; any one will do)."""
    return min(r for d in _destinations(settings, account) for r in d.regions)


def _destinations(settings: DeploySettings, account: str) -> list[DestinationConfig]:
    return [d for rule in settings.config.rules for d in rule.account_destinations if d.account == account]


def _external_ids(destinations: list[DestinationConfig]) -> list[str]:
    """The ExternalIds the role requires (the config refuses a role some destinations set one for and some not)."""
    return sorted({d.external_id for d in destinations if d.external_id})


def _key_arn(kms_key: str, account: str, region: str) -> str:
    """The ARN of a key the config names by ARN or by key id."""
    if KEY_ARN_RE.fullmatch(kms_key):
        return kms_key
    return partition_of(region).arn("kms", region, account, f"key/{kms_key}")


def _repository_keys(settings: DeploySettings, account: str, role_name: str) -> dict[str, list[str]]:
    """The customer-managed key ARNs the role creates repositories with, by Region.

    AES256 and KMS without a `kms_key` (ECR's AWS-managed key) need no KMS permission.
    """
    keys: dict[str, set[str]] = {}
    for rule in settings.config.rules:
        create = rule.create_repository
        if create is None or create.encryption != "KMS" or not create.kms_key:
            continue
        for destination in rule.account_destinations:
            if destination.account != account or destination.role_name != role_name:
                continue
            for region in destination.regions:
                keys.setdefault(region, set()).add(_key_arn(create.kms_key, account, region))
    return {region: sorted(arns) for region, arns in sorted(keys.items())}


class DestinationStack(cdk.Stack):
    """One role per role name the config uses in this account, trusted only by the source roles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        account: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        destinations = _destinations(settings, account)
        if not destinations:
            raise SettingsError(f"account {account} is not a destination of any rule")
        self.roles: dict[str, iam.Role] = {}
        for role_name in sorted({d.role_name for d in destinations}):
            same_role = [d for d in destinations if d.role_name == role_name]
            self.roles[role_name] = self._role(settings, account, role_name, same_role)
        self.reader: iam.Role | None = None
        operators = settings.config.operators
        if operators is not None and any(d.credentials is None for d in destinations):
            self.reader = self._reader(settings, account, operators)

    def _reader(self, settings: DeploySettings, account: str, operators: Operators) -> iam.Role:
        """The read-only role the config's operators (people of the source account) assume for `status` and
        `sync`: DescribeImages on the rules' repositories here, nothing else. IAM trust policies cannot name
        a principal with a wildcard, so the source account is trusted on condition that the caller's
        aws:PrincipalArn matches a configured pattern (ArnLike; IAM User Guide, "AWS global condition
        context keys": aws:PrincipalArn is the role's ARN for a role session)."""
        role = iam.Role(
            self,
            f"Role-{operators.role_name}",
            role_name=operators.role_name,
            description="Read-only: the ECR replication operators of the source account list images here",
            assumed_by=iam.AccountPrincipal(settings.config.source.account).with_conditions(
                {"ArnLike": {"aws:PrincipalArn": operators.principals}}
            ),
            max_session_duration=MAX_SESSION,
        )
        repositories = naming.account_repository_arns(settings.config, account)
        role.add_to_policy(
            iam.PolicyStatement(sid="ListImages", actions=READ_ACTIONS, resources=repositories)
        )
        acknowledge(
            role,
            {
                f"AwsSolutions-IAM5[Resource::{arn}]": (
                    "Read-only DescribeImages on the repositories the rules write here (the destination "
                    "repository template rendered with the rule's repository glob, or '*' for a regex/semver "
                    "rule); status and sync list each once."
                )
                for arn in repositories
                if "*" in arn
            },
        )
        return role

    @staticmethod
    def _trusted(
        settings: DeploySettings, destinations: list[DestinationConfig]
    ) -> tuple[iam.IPrincipal, str]:
        """Who may assume the role: the source roles, or in another partition the configured principals."""
        external_ids = _external_ids(destinations)
        external = {"StringEquals": {"sts:ExternalId": external_ids}} if external_ids else {}
        principals = sorted({d.credentials.principal for d in destinations if d.credentials is not None})
        if principals:
            trusted = [iam.ArnPrincipal(arn).with_conditions(external) for arn in principals]
            return (
                trusted[0] if len(trusted) == 1 else iam.CompositePrincipal(*trusted),
                "Assumed by the ECR replication user of this partition, whose key pair the source account stores",
            )
        conditions: dict[str, Any] = {
            "ArnEquals": {"aws:PrincipalArn": naming.source_role_arns(settings.config)}
        }
        string_equals: dict[str, Any] = dict(external.get("StringEquals", {}))
        if settings.organization_id:
            string_equals["aws:PrincipalOrgID"] = settings.organization_id
        if string_equals:
            conditions["StringEquals"] = string_equals
        return (
            iam.AccountPrincipal(settings.config.source.account).with_conditions(conditions),
            "Assumed by the ECR replication copy and precheck roles of the source account",
        )

    def _role(
        self, settings: DeploySettings, account: str, role_name: str, destinations: list[DestinationConfig]
    ) -> iam.Role:
        config = settings.config
        principal, description = self._trusted(settings, destinations)
        role = iam.Role(
            self,
            f"Role-{role_name}",
            role_name=role_name,
            description=description,
            assumed_by=principal,
            max_session_duration=MAX_SESSION,
        )
        repositories = naming.destination_repository_arns(config, account, role_name)
        seeds = SEED_READ_ACTIONS if config.regional_seeds else []
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PushAndVerify", actions=[*PUSH_ACTIONS, *VERIFY_ACTIONS, *seeds], resources=repositories
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="EnsureRepository", actions=CREATE_ACTIONS, resources=repositories)
        )
        deleting = naming.destination_repository_arns(config, account, role_name, deletes=True)
        if deleting:
            role.add_to_policy(
                iam.PolicyStatement(sid="PropagateDeletes", actions=DELETE_ACTIONS, resources=deleting)
            )
        for region, keys in _repository_keys(settings, account, role_name).items():
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="RepositoryKey" + "".join(part.capitalize() for part in region.split("-")),
                    actions=KEY_ACTIONS,
                    resources=keys,
                    conditions={"StringEquals": {"kms:ViaService": partition_of(region).host("ecr", region)}},
                )
            )
        role.add_to_policy(
            iam.PolicyStatement(sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        reasons = {
            "AwsSolutions-IAM5[Resource::*]": (
                "ecr:GetAuthorizationToken does not support resource-level permissions (AWS requires "
                "Resource '*'); every push, read and create action is scoped to repository ARNs."
            )
        }
        for arn in sorted({*repositories, *deleting}):
            if "*" in arn:
                reasons[f"AwsSolutions-IAM5[Resource::{arn}]"] = (
                    "The rules write every repository under this prefix: the destination repository "
                    "template rendered with the rule's repository glob (or '*' for a regex/semver "
                    "rule). IAM's '*' matches exactly those names; CreateRepository is needed because "
                    "the workflow creates missing destination repositories. BatchDeleteImage, where "
                    "granted, is on the prefixes of rules with propagate_deletes only."
                )
        acknowledge(role, reasons)
        return role
