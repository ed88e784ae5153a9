"""EcrReplicationForward-<account>-<region>: a source other than the home one sends its ECR events to the home bus.

- A rule on the source's default bus, named `ecr-replication-forward`, with the compiled pattern of the rules that
  name this source (workflow.pipeline.plan.event_pattern(config, source)), whose target is the home account's
  default bus in the home Region (EventBridge user guide, "Sending and receiving events between AWS accounts" and
  "... between AWS Regions"), through a role that may put events there and nowhere else. An event keeps the
  account and Region it came from, so the home rule and the Plan know its source.
- A dead-letter queue: EventBridge retries a failed delivery (24 hours, 185 attempts by default: "Event retry
  policy and using dead-letter queues"), then puts the event in it instead of dropping it; an alarm, to this
  stack's topic, as soon as one is there (docs/runbook.md, "Forwarded events in a dead-letter queue").
- In the first forwarding stack of an account other than the home one, its read-only source-access role
  (infra/constructs/source_access.py).

Cost: each forwarded event is a custom event charged to this account ("Events sent from one account to another
are charged to the sending account as custom events", and events sent to another bus are "billed as per custom
events pricing"), plus inter-Region data transfer for a different Region (Amazon EventBridge pricing).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import naming
from infra.constructs.alarms import PERIOD, notifying_alarm
from infra.constructs.notifications import Notifications
from infra.constructs.queues import dead_letter_queue
from infra.constructs.source_access import SourceAccessRole
from infra.settings import DeploySettings
from workflow.models.config import SourceConfig
from workflow.models.forwarding import FORWARD_RULE_NAME, home_bus_arn
from workflow.pipeline.plan import event_pattern


class ForwardingStack(cdk.Stack):
    """Forward one source's ECR events to the home bus (and, once per other account, its source-access role)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        source: SourceConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = settings.config
        self.source = source
        pattern = event_pattern(config, source)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=FORWARD_RULE_NAME,
            description=f"ECR events of {source.name} the replication rules may accept, to the home bus",
            event_pattern=events.EventPattern(
                source=pattern["source"],
                detail_type=pattern["detail-type"],
                account=pattern.get("account"),
                region=pattern.get("region"),
                detail=pattern["detail"],
            ),
        )
        self.dead_letter_queue = dead_letter_queue(self, of="the forwarding rule's target")
        self.role = iam.Role(
            self,
            "ForwardRole",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": source.account}}
            ),
            description=f"EventBridge: put {source.name}'s ECR events on the replication's home bus",
        )
        home = events.EventBus.from_event_bus_arn(self, "HomeBus", home_bus_arn(config))
        self.rule.add_target(targets.EventBus(home, role=self.role, dead_letter_queue=self.dead_letter_queue))
        notifications = Notifications(self, "Notifications", emails=settings.emails)
        self.topic = notifications.topic
        self.alarm = notifying_alarm(
            self,
            "DeadLetterQueueAlarm",
            self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ),
            f"ECR events of {source.name} could not be forwarded to the replication's home bus: their pushes are "
            "not replicated until the reconciliation runs (docs/runbook.md)",
            self.topic,
        )
        self.access = None
        if naming.source_access_stack_source(config, source.account) == source:
            self.access = SourceAccessRole(self, "SourceAccess", settings=settings, account=source.account)
        cdk.CfnOutput(self, "ForwardRuleArn", value=self.rule.rule_arn)
        cdk.CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
