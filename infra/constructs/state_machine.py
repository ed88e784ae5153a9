"""The state machine, loaded from statemachine.asl.json with its ${Substitutions} filled by CDK.

The file is valid JSON as committed: every placeholder sits inside a string, and the Map's concurrency
comes from the Plan function's output (MaxConcurrencyPath), which reads the same packaged config.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.fanout_bucket import RESULT_WRITER_ACTIONS, FanOutBucket
from infra.constructs.functions import LOG_RETENTION, acknowledge
from infra.settings import REPOSITORY_ROOT
from workflow.pipeline.announce import BUS as EVENT_BUS

DEFINITION_FILE = REPOSITORY_ROOT / "statemachine.asl.json"
SUBSTITUTIONS = (
    "PlanFunctionArn",
    "GateFunctionArn",
    "PrecheckFunctionArn",
    "SummarizeFunctionArn",
    "RecordFunctionArn",
    "CopyProjectName",
    "NotificationTopicArn",
)
# The managed rule Step Functions creates for codebuild:startBuild.sync.
SYNC_RULE = "StepFunctionsGetEventForCodeBuildStartBuildRule"


class ReplicationStateMachine(Construct):
    """STANDARD state machine with ALL-level logging to a vended log group and X-Ray tracing."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: lambda_.IFunction,
        gate: lambda_.IFunction,
        precheck: lambda_.IFunction,
        summarize: lambda_.IFunction,
        record: lambda_.IFunction,
        copy_project: codebuild.IProject,
        topic: sns.ITopic,
        key: kms.IKey,
        fanout: FanOutBucket,
        definition_file: Path = DEFINITION_FILE,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        if not definition_file.is_file():
            raise FileNotFoundError(f"state machine definition not found: {definition_file}")
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-workflow",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="ECR replication state machine",
        )
        substitutions = {
            "PlanFunctionArn": plan.function_arn,
            "GateFunctionArn": gate.function_arn,
            "PrecheckFunctionArn": precheck.function_arn,
            "SummarizeFunctionArn": summarize.function_arn,
            "RecordFunctionArn": record.function_arn,
            "CopyProjectName": copy_project.project_name,
            "NotificationTopicArn": topic.topic_arn,
        }
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(definition_file)),
            definition_substitutions=substitutions,
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        self._grant(stack, [plan, gate, precheck, summarize, record], copy_project, topic, key)
        # The Distributed Maps read targets and events, and write results, in the fan-out bucket.
        fanout.grant(self.role, RESULT_WRITER_ACTIONS, "DistributedMapObjects")
        self._grant_child_executions(stack)

    def _grant_child_executions(self, stack: cdk.Stack) -> None:
        """A Distributed Map starts its children as executions of this state machine, and describes and stops
        them (developer guide, "IAM policies for using Distributed Map states":
        https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html). A child's ARN is
        `execution:<name>/<Map Run label>:<id>`. In a policy of its own: the role's default policy naming the
        state machine would make the state machine depend on itself."""
        name = self.state_machine.state_machine_name
        executions = [
            stack.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{name}{separator}*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for separator in ("/", ":")
        ]
        policy = iam.Policy(
            self,
            "DistributedMapPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="StartChildExecutions",
                    actions=["states:StartExecution"],
                    resources=[self.state_machine.state_machine_arn],
                ),
                iam.PolicyStatement(
                    sid="WatchChildExecutions",
                    actions=["states:DescribeExecution", "states:StopExecution"],
                    resources=executions,
                ),
            ],
        )
        policy.attach_to_role(self.role)
        machine = stack.resolve(stack.get_logical_id(self.state_machine.node.default_child))  # type: ignore[arg-type]
        where = f"arn:<AWS::Partition>:states:{stack.region}:{stack.account}:execution:<{machine}.Name>"
        acknowledge(
            policy,
            {
                f"AwsSolutions-IAM5[Resource::{where}{separator}*]": (
                    "The executions of this one state machine, named by Step Functions at run time: its Distributed "
                    "Map's children (execution:<name>/<label>:<id>) and, as the guide's policy names them, "
                    "execution:<name>:<id>."
                )
                for separator in ("/", ":")
            },
        )

    def _grant(
        self,
        stack: cdk.Stack,
        functions: list[lambda_.IFunction],
        copy_project: codebuild.IProject,
        topic: sns.ITopic,
        key: kms.IKey,
    ) -> None:
        statements = [
            iam.PolicyStatement(
                sid="InvokeWorkflowFunctions",
                actions=["lambda:InvokeFunction"],
                resources=[function.function_arn for function in functions],
            ),
            iam.PolicyStatement(
                sid="RunCopyBuilds",
                actions=["codebuild:StartBuild", "codebuild:StopBuild", "codebuild:BatchGetBuilds"],
                resources=[copy_project.project_arn],
            ),
            iam.PolicyStatement(
                sid="CodeBuildSyncRule",
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)],
            ),
            iam.PolicyStatement(sid="PublishSummary", actions=["sns:Publish"], resources=[topic.topic_arn]),
            iam.PolicyStatement(
                sid="PutReplicationEvents",
                actions=["events:PutEvents"],
                resources=[stack.format_arn(service="events", resource="event-bus", resource_name=EVENT_BUS)],
            ),
            iam.PolicyStatement(
                sid="EncryptSummary",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        acknowledge(
            self.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "Added by CDK for the features cdk-nag asks for: X-Ray tracing (PutTraceSegments, "
                    "PutTelemetryRecords, GetSampling*) and CloudWatch Logs vended delivery "
                    "(logs:CreateLogDelivery and friends); AWS documents that these actions do not "
                    "support resource-level permissions."
                ),
            },
        )
