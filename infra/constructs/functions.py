"""The workflow's Lambda functions (plan, precheck, record, summarize): one shared asset, one role each."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra.bundling import CONFIG_FILE_NAME, lambda_asset_options
from infra.settings import REPOSITORY_ROOT
from workflow.pipeline.timeouts import FUNCTION_TIMEOUTS

RUNTIME = lambda_.Runtime.PYTHON_3_14
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
XRAY_REASON = (
    "X-Ray's PutTraceSegments and PutTelemetryRecords do not support resource-level permissions; "
    "AWS documents Resource '*' for them (active tracing)."
)


def acknowledge(scope: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge cdk-nag findings on a construct, each with its reason."""
    cdk.Validations.of(scope).acknowledge(
        *(cdk.Acknowledgment(id=rule, reason=reason) for rule, reason in reasons.items())
    )


class HandlerCode(Construct):
    """The Lambda asset shared by every handler (bundled once), reusable by later constructs."""

    def __init__(self, scope: Construct, construct_id: str, *, config_path: Path) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(str(REPOSITORY_ROOT), **lambda_asset_options(config_path))

    def function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        timeout: cdk.Duration,
        memory_size: int = 256,
        role_name: str | None = None,
        environment: dict[str, str] | None = None,
    ) -> lambda_.Function:
        """A function running `handler` from this asset, with its own role and log group."""
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{construct_id} Lambda of the ECR replication workflow",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        function = lambda_.Function(
            scope,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=self.code,
            role=role,
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={
                "REPLICATION_CONFIG_FILE": f"/var/task/{CONFIG_FILE_NAME}",
                "POWERTOOLS_SERVICE_NAME": "ecr-replication",
                **(environment or {}),
            },
        )
        acknowledge(role, {"AwsSolutions-IAM5[Resource::*]": XRAY_REASON})
        return function


class WorkflowFunctions(Construct):
    """Plan, Precheck, Record and Summarize."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: HandlerCode,
        precheck_role_name: str,
        source_read: Sequence[iam.PolicyStatement],
        destination_access: Sequence[iam.PolicyStatement],
    ) -> None:
        super().__init__(scope, construct_id)
        self.plan = code.function(
            self,
            "Plan",
            handler="lambdas.plan.handler",
            description="Parses the ECR event or manual input and plans the targets",
            timeout=cdk.Duration.seconds(FUNCTION_TIMEOUTS["plan"]),
        )
        self.precheck = code.function(
            self,
            "Precheck",
            handler="lambdas.precheck.handler",
            description="Checks a destination: present, tagged (tag put), or copy needed",
            timeout=cdk.Duration.seconds(FUNCTION_TIMEOUTS["precheck"]),
            memory_size=512,
            role_name=precheck_role_name,
        )
        self.summarize = code.function(
            self,
            "Summarize",
            handler="lambdas.summarize.handler",
            description="Summarizes the target results into the outcome and the email text",
            timeout=cdk.Duration.seconds(FUNCTION_TIMEOUTS["summarize"]),
        )
        # Record reads what the states hand it and calls no AWS API: its role only writes its logs.
        self.record = code.function(
            self,
            "Record",
            handler="lambdas.record.handler",
            description="Reads a copy build's RESULT or a caught error into the destination's record",
            timeout=cdk.Duration.seconds(FUNCTION_TIMEOUTS["record"]),
        )
        precheck_role = self.precheck.role
        assert precheck_role is not None
        for statement in [*source_read, *destination_access]:
            precheck_role.add_to_principal_policy(statement)

    @property
    def all(self) -> list[lambda_.Function]:
        """The four functions."""
        return [self.plan, self.precheck, self.record, self.summarize]
