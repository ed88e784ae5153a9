"""The operators' managed policies: what a person of the source account needs to run the CLI by hand.

Two customer managed policies with fixed names, which an IAM Identity Center permission set (or an IAM role
or group) attaches: `ecr-replication-operator-read-<region>` for `status`, `plan` and `sync --dry-run`
(list the source's repositories and images, read the gates, assume the destinations' read-only roles) and
`ecr-replication-operator-start-<region>` for `sync` and `start` (start, list and describe executions of
this state machine). Nothing in them writes to a registry: a repair is always an execution, which writes as
the workflow's own roles. `sts:GetCallerIdentity` (`start --override-reason`) needs no permission (AWS STS
API reference, GetCallerIdentity).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import naming
from infra.constructs.functions import acknowledge
from infra.constructs.gates import gate_statements
from infra.constructs.reconciliation import (
    SOURCE_LIST_ACTIONS,
    SOURCE_READ_ACTIONS,
    execution_arns,
    nag_resource_id,
)
from workflow.core.partitions import partition_of
from workflow.models.config import ReplicationConfig


class OperatorPolicies(Construct):
    """`read` and `start`, the operators' managed policies (only when the config has `operators`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ReplicationConfig,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        read_name, start_name = naming.operator_policy_names(config)
        source = config.source
        all_repositories = partition_of(source.region).arn(
            "ecr", source.region, source.account, "repository/*"
        )
        readers = naming.reader_role_arns(config)
        self.read = iam.ManagedPolicy(
            self,
            "Read",
            managed_policy_name=read_name,
            description="ECR replication operators: status, plan and sync --dry-run (read-only)",
            statements=[
                iam.PolicyStatement(
                    sid="ListSourceRepositories", actions=SOURCE_LIST_ACTIONS, resources=[all_repositories]
                ),
                iam.PolicyStatement(
                    sid="ReadSourceImages",
                    actions=SOURCE_READ_ACTIONS,
                    resources=naming.source_repository_arns(config),
                ),
                *gate_statements(config),
                *(
                    [
                        iam.PolicyStatement(
                            sid="AssumeReaderRoles", actions=["sts:AssumeRole"], resources=readers
                        )
                    ]
                    if readers
                    else []
                ),
            ],
        )
        executions = execution_arns(self, state_machine)
        self.start = iam.ManagedPolicy(
            self,
            "Start",
            managed_policy_name=start_name,
            description="ECR replication operators: sync and start (runs of this state machine only)",
            statements=[
                iam.PolicyStatement(
                    sid="StartRuns",
                    actions=["states:StartExecution", "states:ListExecutions"],
                    resources=[state_machine.state_machine_arn],
                ),
                iam.PolicyStatement(
                    sid="FollowRuns", actions=["states:DescribeExecution"], resources=[executions]
                ),
            ],
        )
        acknowledge(self.read, _read_reasons(config, all_repositories))
        acknowledge(
            self.start,
            {
                nag_resource_id(self, executions): (
                    "Execution names are derived at run time; DescribeExecution is scoped to this state "
                    "machine's executions."
                )
            },
        )


def _read_reasons(config: ReplicationConfig, all_repositories: str) -> dict[str, str]:
    reasons = {
        f"AwsSolutions-IAM5[Resource::{all_repositories}]": (
            "DescribeRepositories without names lists the registry (sync); read-only metadata, and the CLI keeps "
            "only the repositories the rules select."
        )
    }
    for arn in [*naming.source_repository_arns(config), *naming.gated_repository_arns(config)]:
        if "*" in arn and arn != all_repositories:
            reasons[f"AwsSolutions-IAM5[Resource::{arn}]"] = (
                "Read-only actions on the repositories a rule's glob or pattern selects (IAM cannot express "
                "regex or semver; the rules filter exactly)."
            )
    if gate_statements(config):
        reasons["AwsSolutions-IAM5[Resource::*]"] = (
            "ecr:GetAuthorizationToken does not support resource-level permissions (AWS requires Resource '*'); "
            "it reads the gated images' signatures, every image action is scoped to repository ARNs."
        )
    return reasons
