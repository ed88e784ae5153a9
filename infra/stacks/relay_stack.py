"""EcrReplicationRelay-<region>: the relay function of one seeded destination Region (`regional_seeds`), in the source
account (workflow/pipeline/seeds.py). It runs as the relay role of the source stack, which it names."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import naming
from infra.constructs.functions import LOG_RETENTION, RUNTIME, HandlerCode
from infra.constructs.relays import relay_log_group_name
from infra.settings import DeploySettings
from workflow.engine.seeds import RELAY_TIMEOUT_SECONDS
from workflow.pipeline.seeds import RELAY_FUNCTION_NAME

MEMORY_MB = (
    2048  # Lambda's network throughput grows with its memory; the copy streams, its memory stays small
)


class RelayStack(cdk.Stack):
    """The relay function (`function`) and its log group."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        role = iam.Role.from_role_name(self, "Role", naming.relay_role_name(settings.config), mutable=False)
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=relay_log_group_name(),
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        code = HandlerCode(self, "HandlerCode", config_path=settings.config_path)
        self.function = lambda_.Function(
            self,
            "Relay",
            function_name=RELAY_FUNCTION_NAME,
            description="Copies a seed's image to another destination of this Region, inside the Region",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="lambdas.relay.handler",
            code=code.code,
            role=role,
            timeout=cdk.Duration.seconds(RELAY_TIMEOUT_SECONDS),
            memory_size=MEMORY_MB,
            log_group=log_group,
            environment={"POWERTOOLS_SERVICE_NAME": "ecr-replication"},
        )
