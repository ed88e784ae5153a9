"""The read-only source-access role in a source account other than the home one.

The home roles (copy, precheck, gate, reconcile) cannot read another account's ECR with their own permissions:
ECR authorizes a cross-account read only through a repository policy in the owning account, and the sources'
repositories belong to the teams that push to them (ECR user guide, "Private repository policies"). So each
other source account gets one role, deployed by its first forwarding stack, that the home roles assume (role
chaining, as for destinations: workflow.engine.roles): trusted by the home account only for those four role ARNs
(`aws:PrincipalArn`, as the destination roles are), and with `aws:PrincipalOrgID` when an organization is named.
It may read, never write: pull (BatchGetImage, GetDownloadUrlForLayer, BatchCheckLayerAvailability), list
(DescribeImages, ListImages, DescribeRepositories) and what gated rules read (scan findings, signing status) on
the repositories its sources' rules select, in each of its source Regions.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import naming
from infra.constructs.functions import acknowledge
from infra.constructs.gates import gate_statements
from infra.settings import DeploySettings
from workflow.models.config import SOURCE_ACCESS_ROLE_NAME

READ_ACTIONS = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "ecr:DescribeImages",
    "ecr:ListImages",
]
MAX_SESSION = cdk.Duration.hours(1)


class SourceAccessRole(Construct):
    """`ecr-replication-source-access` in `account`: what the home roles read the account's sources with."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, account: str
    ) -> None:
        super().__init__(scope, construct_id)
        config = settings.config
        conditions: dict[str, Any] = {
            "ArnEquals": {"aws:PrincipalArn": naming.source_reader_role_arns(config)}
        }
        if settings.organization_id:
            conditions["StringEquals"] = {"aws:PrincipalOrgID": settings.organization_id}
        self.role = iam.Role(
            self,
            "Role",
            role_name=SOURCE_ACCESS_ROLE_NAME,
            description="Read-only: the ECR replication roles of the home account read this account's sources",
            assumed_by=iam.AccountPrincipal(config.source.account).with_conditions(conditions),
            max_session_duration=MAX_SESSION,
        )
        repositories = naming.source_repository_arns(config, account)
        listings = naming.source_listing_arns(config, account)
        statements = [
            iam.PolicyStatement(sid="ReadSourceImages", actions=READ_ACTIONS, resources=repositories),
            iam.PolicyStatement(
                sid="ListSourceRepositories", actions=["ecr:DescribeRepositories"], resources=listings
            ),
            iam.PolicyStatement(sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            *[
                s
                for s in gate_statements(config, account)
                if s.sid not in ("ReadGatedImages", "GateEcrToken")
            ],
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        acknowledge(self.role, _reasons(repositories, listings))


def _reasons(repositories: list[str], listings: list[str]) -> dict[str, str]:
    reasons = {
        "AwsSolutions-IAM5[Resource::*]": (
            "ecr:GetAuthorizationToken does not support resource-level permissions (AWS requires Resource '*'); "
            "with scan gates, inspector2:ListFindings, which ECR needs for enhanced findings and AWS documents "
            "with Resource '*'. Every image action is scoped to repository ARNs; nothing here writes."
        )
    }
    for arn in listings:
        reasons[f"AwsSolutions-IAM5[Resource::{arn}]"] = (
            "DescribeRepositories without names lists the registry (reconciliation and sync walk every source); "
            "read-only metadata, and only the repositories the rules select are read further."
        )
    for arn in repositories:
        if "*" in arn and arn not in listings:
            reasons[f"AwsSolutions-IAM5[Resource::{arn}]"] = (
                "The rules of this account's sources select these repositories by a glob (IAM's '*' matches what "
                "it matches) or by a regex or semver range IAM cannot express; read-only actions."
            )
    return reasons
