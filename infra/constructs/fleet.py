"""Organization destinations: the fleet StackSet, and the Organizations reads the Plan and reconcile roles make.

The StackSet deploys the fleet role (infra/stacks/fleet_role.py) with service-managed permissions to the
organizational units the config names (the root for `organization: true`), in one Region (IAM is global), with
automatic deployment: an account that joins one of them gets the role without anyone acting, and loses it
when it leaves ("AWS::CloudFormation::StackSet AutoDeployment", CloudFormation template reference). A
service-managed StackSet is created from the management account (`CallAs: SELF`) or from a member account
registered as a delegated administrator for StackSets (`CallAs: DELEGATED_ADMIN`, the default: the source
account; "Register a delegated administrator", CloudFormation user guide). StackSets never deploy to the
management account itself. `exclude_accounts` are not excluded here (OU membership is known only at run time):
the role is there, unused.

The Organizations actions are exactly those workflow/pipeline/organizations.py calls for this config
(naming.organization_actions); they list, never change, and the management account's delegation policy
(`delegation_policy`, docs/deploy.md) bounds what the source account may read at all.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from infra import naming
from infra.constructs.functions import acknowledge
from infra.settings import DeploySettings
from workflow.core.partitions import partition_of
from workflow.models.config import ReplicationConfig

ORGANIZATIONS_REASON = (
    "Organizations list actions the Plan/reconcile functions call to resolve organization destinations: "
    "DescribeOrganization and ListAccounts have no resource type, and the OUs below the named ones are known "
    "only at run time; read-only, and bounded by the management account's delegation policy."
)
FLEET_ROLES_REASON = (
    "The fleet role in any account: organization destinations are accounts known only when a run plans; each "
    "fleet role trusts only this source account's replication roles (SourceRoleArns), so nothing else is assumable."
)


def organization_read(config: ReplicationConfig) -> list[iam.PolicyStatement]:
    """The Organizations reads that resolve the config's organization destinations (none without them)."""
    actions = naming.organization_actions(config)
    if not actions:
        return []
    return [iam.PolicyStatement(sid="ResolveOrganizationDestinations", actions=actions, resources=["*"])]


def grant_organization_read(role: iam.IRole, config: ReplicationConfig) -> None:
    """Give `role` the Organizations reads, acknowledged for cdk-nag."""
    statements = organization_read(config)
    for statement in statements:
        role.add_to_principal_policy(statement)
    if statements:
        acknowledge(role, {"AwsSolutions-IAM5[Resource::*]": ORGANIZATIONS_REASON})


def acknowledge_fleet_roles(role: IConstruct, config: ReplicationConfig) -> None:
    """cdk-nag acknowledgment for AssumeRole on the fleet role in any account."""
    fleet = naming.fleet_destinations(config)
    if fleet:
        arn = naming.destination_role_arns(config)
        wildcard = [a for a in arn if ":iam::*:" in a]
        acknowledge(role, {f"AwsSolutions-IAM5[Resource::{a}]": FLEET_ROLES_REASON for a in wildcard})


def delegation_policy(config: ReplicationConfig) -> dict[str, Any]:
    """The resource-based delegation policy the management account applies (`aws organizations
    put-resource-policy`) so the source account may make exactly the reads organization destinations need
    ("Resource-based policy examples for AWS Organizations": Principal the member account, read actions)."""
    partition = partition_of(config.source.region).name
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EcrReplicationResolvesOrganizationDestinations",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{config.source.account}:root"},
                "Action": naming.organization_actions(config),
                "Resource": "*",
            }
        ],
    }


class FleetStackSet(Construct):
    """The service-managed StackSet of the fleet role, and the delegation policy as an output."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, template: dict[str, Any]
    ) -> None:
        super().__init__(scope, construct_id)
        config = settings.config
        fleet = naming.fleet_destinations(config)
        units = sorted({unit for destination in fleet for unit in destination.organizational_units or []})
        if any(destination.organization for destination in fleet) and settings.organization_root_id:
            units = [settings.organization_root_id]  # the root covers every OU
        parameters = {
            "RoleName": fleet[0].role,
            "SourceAccountId": config.source.account,
            "SourceRoleArns": ",".join(naming.source_role_arns(config)),
            "RepositoryPrefix": settings.repository_prefix,
            "Regions": ",".join(naming.fleet_regions(config)),
            "ExternalId": fleet[0].external_id or "",
            "OrganizationId": settings.organization_id or "",
            "AllowDeletes": "true" if naming.fleet_deletes(config) else "false",
        }
        self.stack_set = cloudformation.CfnStackSet(
            self,
            "StackSet",
            stack_set_name=naming.FLEET_STACK_SET_NAME,
            description="ECR filtered replication: the fleet destination role in every account of the named OUs",
            permission_model="SERVICE_MANAGED",
            call_as=settings.stack_set_call_as,
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            capabilities=["CAPABILITY_NAMED_IAM"],
            managed_execution={"Active": True},
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                max_concurrent_percentage=100,
                failure_tolerance_percentage=10,
                region_concurrency_type="PARALLEL",
            ),
            parameters=[
                cloudformation.CfnStackSet.ParameterProperty(parameter_key=key, parameter_value=value)
                for key, value in parameters.items()
            ],
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cloudformation.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=units
                    ),
                    regions=[config.source.region],
                )
            ],
            template_body=json.dumps(template, separators=(",", ":")),
        )
        cdk.CfnOutput(scope, "FleetStackSetName", value=naming.FLEET_STACK_SET_NAME)
        cdk.CfnOutput(
            scope,
            "OrganizationsDelegationPolicy",
            value=json.dumps(delegation_policy(config), separators=(",", ":")),
            description="Apply in the management account: aws organizations put-resource-policy --content '<this>'",
        )
