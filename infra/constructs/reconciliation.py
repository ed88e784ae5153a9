"""Scheduled reconciliation: an EventBridge Scheduler schedule invoking the reconcile Lambda.

The Lambda lists the source repositories the rules select and each destination's images, then starts
executions for what is missing (lost push events, new rules or destinations). Its role can read the
source repositories, assume the destination roles, list, start and describe executions of the state machine,
and publish to the topic; nothing else. The schedule invokes it through its own role. Scheduler invokes
asynchronously, so Lambda does not retry a failed run (the next schedule does) and an alarm on the
function's errors notifies the topic.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import naming
from infra.constructs.alarms import PERIOD, alarm_section, notifying_alarm
from infra.constructs.destination_access import acknowledge_secret_names, destination_access
from infra.constructs.functions import HandlerCode, acknowledge
from infra.constructs.gates import source_access
from infra.constructs.queues import dead_letter_queue
from infra.settings import DEFAULT_RECONCILE_MAX_IN_FLIGHT, DEFAULT_RECONCILE_SCHEDULE
from workflow.models.config import ReplicationConfig
from workflow.pipeline.timeouts import FUNCTION_TIMEOUTS

SOURCE_LIST_ACTIONS = ["ecr:DescribeRepositories"]
# DescribeImages lists the source; `sync --local` (run by hand with this role's credentials: README, "Backfill
# and reconciliation") also copies from it by the registry protocol: manifests and referrers (BatchGetImage),
# blobs (GetDownloadUrlForLayer) and the tag list for signature tags (ListImages), with a registry token.
SOURCE_READ_ACTIONS = [
    "ecr:DescribeImages",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
]


def _machine_name(state_machine: sfn.IStateMachine) -> str:
    """The state machine's name, from its ARN (works for imported machines and tokens alike)."""
    name = cdk.Arn.split(state_machine.state_machine_arn, cdk.ArnFormat.COLON_RESOURCE_NAME).resource_name
    assert name is not None
    return name


def _render(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it: `<LogicalId>`, `<LogicalId.Attr>`, else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    return json.dumps(value, separators=(",", ":"))


def execution_arns(scope: Construct, state_machine: sfn.IStateMachine) -> str:
    """The ARN pattern of every execution of `state_machine` (DescribeExecution is authorized on executions)."""
    return cdk.Stack.of(scope).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{_machine_name(state_machine)}:*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def nag_resource_id(scope: Construct, resource: str) -> str:
    """The cdk-nag IAM5 finding id for a wildcard resource that may hold tokens."""
    return f"AwsSolutions-IAM5[Resource::{_render(cdk.Stack.of(scope).resolve(resource))}]"


class Reconciliation(Construct):
    """The reconcile function and its schedule (`enabled=False` keeps the schedule, disabled)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ReplicationConfig,
        state_machine: sfn.IStateMachine,
        topic: sns.ITopic,
        code: HandlerCode,
        schedule_expression: str = DEFAULT_RECONCILE_SCHEDULE,
        enabled: bool = True,
        max_in_flight: int = DEFAULT_RECONCILE_MAX_IN_FLIGHT,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = code.function(
            self,
            "Function",
            handler="lambdas.reconcile.handler",
            description="Reconciliation: starts executions for images the destinations lack",
            timeout=cdk.Duration.seconds(FUNCTION_TIMEOUTS["reconcile"]),
            memory_size=512,
            role_name=naming.reconcile_role_name(config),
            environment={
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "TOPIC_ARN": topic.topic_arn,
                "MAX_IN_FLIGHT": str(max_in_flight),
            },
        )
        role = self.function.role
        assert role is not None
        self._grant(role, config, state_machine, topic)
        # A failed 15-minute run is not worth repeating from scratch; the next schedule retries.
        self.function.configure_async_invoke(retry_attempts=0)
        self.errors_alarm = notifying_alarm(
            self,
            "ErrorsAlarm",
            self.function.metric_errors(period=PERIOD, statistic="Sum"),
            "A reconciliation run failed or timed out; lost pushes are not being repaired",
            topic,
            section=alarm_section("ReconciliationErrors"),
        )
        self.dead_letter_queue = dead_letter_queue(self, of="the reconciliation schedule's target")
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            ),
            description="EventBridge Scheduler: invoke the reconcile Lambda",
        )
        acknowledge(
            self.schedule_role,
            {
                nag_resource_id(self, f"{self.function.function_arn}:*"): (
                    "CDK's grantInvoke adds the function's versions and aliases (<function ARN>:*); "
                    "the role can invoke nothing else."
                )
            },
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="Daily repair of images that live replication missed",
            schedule=scheduler.ScheduleExpression.expression(schedule_expression),
            target=scheduler_targets.LambdaInvoke(
                self.function,
                role=self.schedule_role,
                input=scheduler.ScheduleTargetInput.from_object({"source": "schedule"}),
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=2,
                max_event_age=cdk.Duration.hours(1),
            ),
            enabled=enabled,
        )

    def _grant(
        self, role: iam.IRole, config: ReplicationConfig, state_machine: sfn.IStateMachine, topic: sns.ITopic
    ) -> None:
        listings = naming.source_listing_arns(config)
        executions = execution_arns(self, state_machine)
        statements = [
            iam.PolicyStatement(
                sid="ListSourceRepositories", actions=SOURCE_LIST_ACTIONS, resources=listings
            ),
            iam.PolicyStatement(
                sid="ReadSourceImages",
                actions=SOURCE_READ_ACTIONS,
                resources=naming.source_repository_arns(config),
            ),
            iam.PolicyStatement(sid="SourceEcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            *destination_access(config),
            # A run lists the RUNNING executions before it starts any (max_in_flight, no duplicates);
            # ListExecutions is authorized on the state machine, not on its executions (Service Authorization
            # Reference, "Actions, resources, and condition keys for AWS Step Functions").
            iam.PolicyStatement(
                sid="ListRunningExecutions",
                actions=["states:ListExecutions"],
                resources=[state_machine.state_machine_arn],
            ),
            iam.PolicyStatement(
                sid="DescribeSyncExecutions",
                actions=["states:DescribeExecution"],
                resources=[executions],
            ),
        ]
        reading_elsewhere = source_access(config)
        if reading_elsewhere is not None:
            statements.append(reading_elsewhere)
        for statement in statements:
            role.add_to_principal_policy(statement)
        acknowledge_secret_names(role, config)
        state_machine.grant_start_execution(role)
        topic.grant_publish(role)
        acknowledge(
            role,
            {
                **{
                    f"AwsSolutions-IAM5[Resource::{arn}]": (
                        "DescribeRepositories without names lists the registry; it is read-only metadata and "
                        "the Lambda keeps only the repositories the rules select."
                    )
                    for arn in listings
                },
                **{
                    f"AwsSolutions-IAM5[Resource::{arn}]": (
                        "Read-only image reads (DescribeImages, and for `sync --local` the pulls) on the "
                        "repositories a rule's glob or pattern selects (IAM cannot express regex or semver; "
                        "the rules filter exactly)."
                    )
                    for arn in naming.source_repository_arns(config)
                    if "*" in arn and arn not in listings
                },
                nag_resource_id(self, executions): (
                    "Execution names are derived at run time; DescribeExecution is scoped to this state "
                    "machine's executions."
                ),
                "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]": (
                    "Publishing to the KMS-encrypted topic needs GenerateDataKey*; CDK's topic grant scopes it "
                    "to the topic's key."
                ),
            },
        )
