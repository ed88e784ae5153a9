"""The relay functions' role and what the copy job may ask of them (`regional_seeds`; workflow/pipeline/seeds.py).

One role, in the source stack (IAM is global), runs the relay function of every seeded Region: it may assume the
destination roles of the seeded Regions' destinations (it reads a seed through the seed's role and writes through the
destination's own: the destination roles trust it, as they trust the copy role) and write its functions' logs; it
reads no source repository. The copy role may invoke those functions, and nothing else of Lambda.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import naming
from infra.constructs.fleet import acknowledge_fleet_roles
from infra.constructs.functions import acknowledge
from workflow.core.partitions import partition_of
from workflow.models.config import ReplicationConfig
from workflow.pipeline.seeds import RELAY_FUNCTION_NAME, relay_function_arn, relay_regions


def relay_log_group_name() -> str:
    """The relay function's log group (named, so that the role in the source stack can be scoped to it)."""
    return f"/aws/lambda/{RELAY_FUNCTION_NAME}"


def seeded_role_arns(config: ReplicationConfig) -> list[str]:
    """The destination roles of destinations in a seeded Region: the only ones a relay assumes (the fleet role in
    any account, when organization destinations have a seeded Region)."""
    regions = set(relay_regions(config))
    arns = {
        partition_of(region).role_arn(destination.account, destination.role_name)
        for rule in config.rules
        for destination in rule.account_destinations
        if destination.credentials is None
        for region in destination.regions
        if region in regions
    }
    fleet = naming.fleet_destinations(config)
    if any(region in regions for destination in fleet for region in destination.regions):
        arns.add(partition_of(config.source.region).role_arn("*", fleet[0].role))
    return sorted(arns)


class RelayRole(Construct):
    """The relay functions' role (`role`), and `grant_invoke(copy_role)`."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ReplicationConfig) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.config = config
        self.role = iam.Role(
            self,
            "Role",
            role_name=naming.relay_role_name(config),
            assumed_by=iam.ServicePrincipal(
                "lambda.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="ECR replication relay: copies a seed's image to another destination of its Region",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeSeededDestinationRoles",
                actions=["sts:AssumeRole"],
                resources=seeded_role_arns(config),
            )
        )
        logs = [
            partition_of(region).arn(
                "logs", region, config.source.account, f"log-group:{relay_log_group_name()}:*"
            )
            for region in relay_regions(config)
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteRelayLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=logs
            )
        )
        acknowledge(
            self.role,
            {
                f"AwsSolutions-IAM5[Resource::{arn}]": (
                    "The relay function's own log group in that Region (its log streams are named at run time)."
                )
                for arn in logs
            },
        )
        acknowledge_fleet_roles(self.role, config)

    def grant_invoke(self, copy_role: iam.IRole) -> None:
        """Let the copy job invoke the relay of each seeded Region."""
        copy_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeRelays",
                actions=["lambda:InvokeFunction"],
                resources=[relay_function_arn(self.config, region) for region in relay_regions(self.config)],
            )
        )
