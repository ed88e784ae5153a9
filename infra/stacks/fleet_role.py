"""The fleet role: the destination role as a plain CloudFormation template with parameters.

No CDK bootstrap is needed where it is deployed: the stack has no asset and no bootstrap version rule (its
synthesizer is `DefaultStackSynthesizer(generate_bootstrap_version_rule=False)`), so the template stands alone.
The source stack deploys it as a service-managed StackSet to the organizational units the config names
(infra/constructs/fleet.py), and infra/app.py writes it as cdk.out/destination-role.template.json for anyone to
deploy by hand (`aws cloudformation deploy`), e.g. in an account named with `account:`.

What the role allows is set by parameters, so adding a repository under the prefix needs no change in any
fleet account: push, read and create (and, with AllowDeletes, delete tags) in the repositories of its own
account whose names start with RepositoryPrefix, only in Regions, and ecr:GetAuthorizationToken. It trusts only
the roles SourceRoleArns of the account SourceAccountId (with ExternalId and aws:PrincipalOrgID when given).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra import naming
from infra.constructs.functions import acknowledge
from infra.settings import DeploySettings
from infra.stacks.destination_stack import (
    CREATE_ACTIONS,
    DELETE_ACTIONS,
    PUSH_ACTIONS,
    SEED_READ_ACTIONS,
    VERIFY_ACTIONS,
)
from workflow.models.config import FLEET_ROLE_NAME

STACK_NAME = "EcrReplicationFleetRole"
MAX_SESSION_SECONDS = 3600
DESCRIPTION = (
    "ECR filtered replication: the fleet destination role, assumed by the source account's replication roles"
)


@dataclass(frozen=True)
class FleetRole:
    """The fleet role's app and stack (for cdk-nag) and its template."""

    app: cdk.App
    stack: FleetRoleStack
    template: dict[str, Any]


class FleetRoleStack(cdk.Stack):
    """The fleet role, every choice a parameter whose default comes from the config."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.parameters = _Parameters(self, settings)
        self.role = self._role()

    def _role(self) -> iam.CfnRole:
        p = self.parameters
        no_value = cdk.Aws.NO_VALUE
        in_regions = {"StringEquals": {"aws:RequestedRegion": p.regions.value_as_list}}
        repositories = cdk.Fn.join(
            "",
            [
                f"arn:{cdk.Aws.PARTITION}:ecr:*:{cdk.Aws.ACCOUNT_ID}:repository/",
                p.repository_prefix.value_as_string,
                "*",
            ],
        )
        statements: list[Any] = [
            # (with the seed read: one template serves every config, regional_seeds or not; ListImages is a read)
            _allow(
                "PushAndVerify",
                [*PUSH_ACTIONS, *VERIFY_ACTIONS, *SEED_READ_ACTIONS],
                repositories,
                in_regions,
            ),
            _allow("EnsureRepository", CREATE_ACTIONS, repositories, in_regions),
            cdk.Fn.condition_if(
                p.deletes.logical_id,
                _allow("PropagateDeletes", DELETE_ACTIONS, repositories, in_regions),
                no_value,
            ),
            _allow("EcrToken", ["ecr:GetAuthorizationToken"], "*", in_regions),
        ]
        string_equals = {
            "sts:ExternalId": cdk.Fn.condition_if(
                p.has_external_id.logical_id, p.external_id.value_as_string, no_value
            ),
            "aws:PrincipalOrgID": cdk.Fn.condition_if(
                p.has_organization.logical_id, p.organization_id.value_as_string, no_value
            ),
        }
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": cdk.Fn.sub(
                            "arn:${AWS::Partition}:iam::${Source}:root",
                            {"Source": p.source_account.value_as_string},
                        )
                    },
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "ArnEquals": {"aws:PrincipalArn": p.source_roles.value_as_list},
                        "StringEquals": cdk.Fn.condition_if(
                            p.has_trust_condition.logical_id, string_equals, no_value
                        ),
                    },
                }
            ],
        }
        role = iam.CfnRole(
            self,
            "Role",
            role_name=p.role_name.value_as_string,
            description=DESCRIPTION,
            assume_role_policy_document=trust,
            max_session_duration=MAX_SESSION_SECONDS,
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="replicate",
                    policy_document={"Version": "2012-10-17", "Statement": statements},
                )
            ],
        )
        cdk.CfnOutput(self, "RoleArn", value=role.attr_arn)
        acknowledge(
            role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "ecr:GetAuthorizationToken does not support resource-level permissions (AWS requires Resource "
                    "'*'); the token grants nothing by itself, and the role only acts in the Regions parameter."
                ),
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:*:<AWS::AccountId>:repository/<RepositoryPrefix>*]": (
                    "The fleet role writes the repositories of its own account under RepositoryPrefix, in the "
                    "Regions parameter only: a prefix rather than names, so a repository the rules add under it "
                    "needs no change in every fleet account (docs/deploy.md says what it allows)."
                ),
            },
        )
        return role


def _allow(sid: str, actions: list[str], resource: Any, condition: dict[str, Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource, "Condition": condition}


class _Parameters:
    """The template's parameters and conditions; defaults from the config and the deploy settings."""

    def __init__(self, stack: cdk.Stack, settings: DeploySettings) -> None:
        config = settings.config
        fleet = naming.fleet_destinations(config)
        role = fleet[0].role if fleet else FLEET_ROLE_NAME
        external_id = (fleet[0].external_id if fleet else None) or ""
        self.role_name = _parameter(
            stack,
            "RoleName",
            role,
            "The role's name: the config's role_name (default ecr-replication-fleet).",
            allowed_pattern=r"[\w+=,.@-]{1,64}",
        )
        self.source_account = _parameter(
            stack,
            "SourceAccountId",
            config.source.account,
            "The source account, whose roles assume this one.",
            allowed_pattern=r"[0-9]{12}",
        )
        self.source_roles = cdk.CfnParameter(
            stack,
            "SourceRoleArns",
            type="CommaDelimitedList",
            default=",".join(naming.source_role_arns(config)),
            description="The source roles that may assume this one (copy, precheck, reconcile).",
        )
        self.repository_prefix = _parameter(
            stack,
            "RepositoryPrefix",
            settings.repository_prefix,
            "The role writes only repositories whose names start with this (empty: every repository).",
            allowed_pattern=r"[a-z0-9._/-]{0,200}",
        )
        self.regions = cdk.CfnParameter(
            stack,
            "Regions",
            type="CommaDelimitedList",
            default=",".join(naming.fleet_regions(config) or [config.source.region]),
            description="The Regions the role acts in.",
        )
        self.external_id = _parameter(
            stack,
            "ExternalId",
            external_id,
            "The ExternalId the source roles send (empty: none).",
            no_echo=True,
        )
        self.organization_id = _parameter(
            stack,
            "OrganizationId",
            settings.organization_id or "",
            "Require the assuming role to be in this organization (aws:PrincipalOrgID; empty: no condition).",
            allowed_pattern=r"(o-[a-z0-9]{10,32})?",
        )
        self.allow_deletes = _parameter(
            stack,
            "AllowDeletes",
            "true" if naming.fleet_deletes(config) else "false",
            "true: the role may remove tags (rules with propagate_deletes).",
            allowed_values=["true", "false"],
        )
        self.has_external_id = _unless_empty(stack, "HasExternalId", self.external_id)
        self.has_organization = _unless_empty(stack, "HasOrganizationId", self.organization_id)
        self.has_trust_condition = cdk.CfnCondition(
            stack,
            "HasTrustCondition",
            expression=cdk.Fn.condition_or(
                cast(cdk.ICfnConditionExpression, self.has_external_id),
                cast(cdk.ICfnConditionExpression, self.has_organization),
            ),
        )
        self.deletes = cdk.CfnCondition(
            stack,
            "AllowsDeletes",
            expression=cdk.Fn.condition_equals(self.allow_deletes.value_as_string, "true"),
        )


def _parameter(
    stack: cdk.Stack, name: str, default: str, description: str, **options: Any
) -> cdk.CfnParameter:
    return cdk.CfnParameter(stack, name, type="String", default=default, description=description, **options)


def _unless_empty(stack: cdk.Stack, name: str, parameter: cdk.CfnParameter) -> cdk.CfnCondition:
    return cdk.CfnCondition(
        stack, name, expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(parameter.value_as_string, ""))
    )


def fleet_role(settings: DeploySettings, *, nag: bool = True) -> FleetRole:
    """Synthesize the fleet role in an app of its own (no bootstrap, no CDK metadata); with `nag`, cdk-nag's
    AwsSolutions pack runs at synth and any unacknowledged finding fails it."""
    app = cdk.App(outdir=tempfile.mkdtemp(prefix="fleet-role-"), analytics_reporting=False)
    stack = FleetRoleStack(
        app,
        STACK_NAME,
        settings=settings,
        synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
        description=DESCRIPTION,
    )
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    template = app.synth().get_stack_by_name(STACK_NAME).template
    return FleetRole(app, stack, dict(template))
