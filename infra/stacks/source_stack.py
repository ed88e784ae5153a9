"""EcrReplicationSource: trigger, state machine, functions, copy project, topic and alarms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import naming
from infra.constructs.alarms import Alarms
from infra.constructs.copy_project import CopyProject
from infra.constructs.dashboard import Dashboard
from infra.constructs.destination_access import acknowledge_secret_names, destination_access
from infra.constructs.fanout_bucket import FanOutBucket
from infra.constructs.fleet import FleetStackSet, acknowledge_fleet_roles, grant_organization_read
from infra.constructs.functions import HandlerCode, WorkflowFunctions, acknowledge
from infra.constructs.gates import GateFunction, gate_statements, source_access
from infra.constructs.notifications import Notifications
from infra.constructs.operators import OperatorPolicies
from infra.constructs.reconciliation import Reconciliation
from infra.constructs.relays import RelayRole
from infra.constructs.state_machine import DEFINITION_FILE, ReplicationStateMachine
from infra.constructs.trigger import Trigger
from infra.settings import DeploySettings
from workflow.models.forwarding import BUS, bus_policy_statements
from workflow.pipeline.plan import event_pattern

FANOUT_BUCKET_ENV = "FANOUT_BUCKET"  # lambdas/observability.py reads it

SOURCE_READ_ACTIONS = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "ecr:DescribeImages",
    "ecr:ListImages",
]
AUTHORIZATION_REASON = (
    "ecr:GetAuthorizationToken does not support resource-level permissions (AWS requires Resource '*'); "
    "the token grants nothing by itself, every image action is scoped to repository ARNs."
)


class SourceStack(cdk.Stack):
    """The workflow in the source account and Region.

    Attributes for later constructs: `topic`, `key`, `handler_code` (the shared Lambda asset,
    with `.function(...)`), `functions`, `gate` (the Gate Lambda), `copy`, `workflow.state_machine`, `trigger`, `alarms`,
    `reconciliation`, `dashboard`, `operators` (the operators' managed policies, with `operators` in the config),
    `fleet` (the fleet StackSet, when organization destinations are configured).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        definition_file: Path = DEFINITION_FILE,
        fleet_template: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        config = settings.config
        source_read = [
            iam.PolicyStatement(
                sid="ReadSourceImages",
                actions=SOURCE_READ_ACTIONS,
                resources=naming.source_repository_arns(config),
            ),
            iam.PolicyStatement(sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        ]
        reading_elsewhere = source_access(config)
        if reading_elsewhere is not None:
            source_read.append(reading_elsewhere)
        access = destination_access(config)
        notifications = Notifications(self, "Notifications", emails=settings.emails)
        self.topic = notifications.topic
        self.key = notifications.key
        self.handler_code = HandlerCode(self, "HandlerCode", config_path=settings.config_path)
        self.fanout = FanOutBucket(self, "FanOut", key=self.key)
        self.functions = WorkflowFunctions(
            self,
            "Functions",
            code=self.handler_code,
            precheck_role_name=naming.precheck_role_name(config),
            source_read=source_read,
            destination_access=access,
        )
        self.gate = GateFunction(self, "Gates", code=self.handler_code, config=config)
        self._grant_fanout()
        self.copy = CopyProject(
            self,
            "Copy",
            compute=settings.copy_compute,
            role_name=naming.copy_role_name(config),
            key=self.key,
            source_read=source_read,
            destination_access=access,
        )
        self.relays = RelayRole(self, "Relays", config=config) if config.regional_seeds else None
        if self.relays is not None:
            self.relays.grant_invoke(self.copy.role)
        self.workflow = ReplicationStateMachine(
            self,
            "Workflow",
            plan=self.functions.plan,
            gate=self.gate.function,
            precheck=self.functions.precheck,
            summarize=self.functions.summarize,
            record=self.functions.record,
            copy_project=self.copy.project,
            topic=self.topic,
            key=self.key,
            fanout=self.fanout,
            definition_file=definition_file,
        )
        self.trigger = Trigger(
            self, "Trigger", pattern=event_pattern(config), state_machine=self.workflow.state_machine
        )
        # The other source accounts' forwarding rules may put their events on this (the home) bus.
        self.bus_policies = [
            events.CfnEventBusPolicy(
                self,
                f"ForwardedEvents{statement['Sid'].rsplit('-', 1)[1]}",
                event_bus_name=BUS,
                statement_id=statement["Sid"],
                statement={key: value for key, value in statement.items() if key != "Sid"},
            )
            for statement in bus_policy_statements(config, settings.organization_id)
        ]
        self.alarms = Alarms(
            self,
            "Alarms",
            state_machine=self.workflow.state_machine,
            log_group=self.workflow.log_group,
            dead_letter_queue=self.trigger.dead_letter_queue,
            topic=self.topic,
        )
        self.reconciliation = Reconciliation(
            self,
            "Reconciliation",
            config=config,
            state_machine=self.workflow.state_machine,
            topic=self.topic,
            code=self.handler_code,
            schedule_expression=settings.reconcile_schedule,
            enabled=settings.reconcile,
            max_in_flight=settings.reconcile_max_in_flight,
        )
        self.alarms.watch_dead_letter_queue(
            "ReconciliationDeadLetterQueue",
            self.reconciliation.dead_letter_queue,
            "The reconciliation schedule could not invoke its Lambda; lost pushes are not being repaired",
        )
        self.dashboard = Dashboard(
            self,
            "Dashboard",
            state_machine=self.workflow.state_machine,
            regions=sorted({r for rule in config.rules for d in rule.destinations for r in d.regions}),
            dead_letter_queues={
                "push events (trigger)": self.trigger.dead_letter_queue,
                "reconciliation schedule": self.reconciliation.dead_letter_queue,
            },
            alarms=[*self.alarms.alarms.values(), self.reconciliation.errors_alarm],
        )
        precheck_role, gate_role = self.functions.precheck.role, self.gate.function.role
        reconcile_role = self.reconciliation.function.role
        assert precheck_role is not None
        assert gate_role is not None
        assert reconcile_role is not None
        for role in (precheck_role, self.copy.role, gate_role):
            acknowledge(role, _source_read_reasons(settings))
        for role in (precheck_role, self.copy.role):
            acknowledge_secret_names(role, config)
        for role in (precheck_role, self.copy.role, reconcile_role):
            acknowledge_fleet_roles(role, config)
        # Organization destinations resolve in the Plan function, and in sync/reconciliation (the reconcile role).
        plan_role = self.functions.plan.role
        assert plan_role is not None
        for role in (plan_role, reconcile_role):
            grant_organization_read(role, config)
        self.fleet = (
            FleetStackSet(self, "Fleet", settings=settings, template=fleet_template)
            if fleet_template is not None and naming.fleet_destinations(config)
            else None
        )
        # `sync` and the daily reconciliation apply the same gates (workflow/ops/sync/gating.py), as this role
        # (which has its registry token already: infra/constructs/reconciliation.py).
        for statement in gate_statements(config, token=False):
            reconcile_role.add_to_principal_policy(statement)
        acknowledge(reconcile_role, _source_read_reasons(settings))
        self.operators = (
            OperatorPolicies(self, "Operators", config=config, state_machine=self.workflow.state_machine)
            if config.operators is not None
            else None
        )
        self._outputs()

    def _grant_fanout(self) -> None:
        """The fan-out bucket to the functions that use it (workflow/pipeline/fanout.py), and its name to them."""
        grants = {
            self.functions.plan: ["s3:PutObject"],
            self.gate.function: ["s3:GetObject", "s3:PutObject"],
            self.functions.summarize: ["s3:GetObject", "s3:PutObject"],
        }
        for function, actions in grants.items():
            assert function.role is not None
            self.fanout.grant(function.role, actions, "FanOutObjects")
            function.add_environment(FANOUT_BUCKET_ENV, self.fanout.bucket.bucket_name)

    def _outputs(self) -> None:
        outputs = {
            "StateMachineArn": self.workflow.state_machine.state_machine_arn,
            "TopicArn": self.topic.topic_arn,
            "CopyProjectName": self.copy.project.project_name,
            "DeadLetterQueueUrl": self.trigger.dead_letter_queue.queue_url,
            "ReconcileFunctionName": self.reconciliation.function.function_name,
            "DashboardUrl": self.dashboard.url(self),
            "FanOutBucketName": self.fanout.bucket.bucket_name,
        }
        if self.operators is not None:
            # The names a permission set references (CustomerManagedPolicyReference), fixed at synth.
            read, start = naming.operator_policy_names(self.settings.config)
            outputs["OperatorReadPolicy"], outputs["OperatorStartPolicy"] = read, start
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)


def _source_read_reasons(settings: DeploySettings) -> dict[str, str]:
    """cdk-nag acknowledgments for the source-read statements, one per wildcard finding."""
    config = settings.config
    widened = naming.widened_rules(config)
    reasons = {
        "AwsSolutions-IAM5[Resource::*]": (
            f"{AUTHORIZATION_REASON} On the precheck role the same finding also covers X-Ray's "
            "PutTraceSegments/PutTelemetryRecords, which AWS documents with Resource '*'; on the Gate and "
            "reconcile roles of a config with scan gates, inspector2:ListFindings, which ECR needs to return "
            "enhanced (Inspector) findings and which AWS documents with Resource '*' (ECR user guide, "
            "'IAM permissions required for enhanced scanning')."
        )
    }
    for arn in naming.source_repository_arns(config):
        if "*" not in arn:
            continue
        if arn.endswith("repository/*"):
            reason = (
                f"Rule(s) {', '.join(widened)} select repositories by a regular expression, semver range or "
                "'*', which IAM cannot express; the Plan Lambda applies the exact rule. Read-only actions."
            )
        else:
            reason = (
                "The rule names this repository prefix with a glob; IAM's '*' matches exactly the "
                "repositories the rule's glob matches. Read-only actions."
            )
        reasons[f"AwsSolutions-IAM5[Resource::{arn}]"] = reason
    return reasons
