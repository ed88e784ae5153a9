"""Event forwarding from the other sources to the home one: the forwarding rule each of them has, and the home
bus policy that lets exactly those rules put events on the home account's default bus.

Each source other than the home one has a rule on its own default bus with the compiled pattern of its rules
(workflow.pipeline.plan.event_pattern(config, source)) whose target is the home account's default bus in the home
Region (EventBridge user guide, "Sending and receiving events between AWS accounts" and "Sending and receiving
events between AWS Regions"). Another account may put events on the home bus only when its policy allows it;
these statements allow each other source account, and only for events its forwarding rules send
(`aws:SourceArn`; "Permissions for Amazon EventBridge event buses", example "Send events only from a specific rule
to the bus in a different Region"), with `aws:PrincipalOrgID` too when the deployment names an organization. The
home account's own Regions need no statement: the forwarding role's own policy is enough in one account.

The CDK app deploys these (infra/stacks/forwarding_stack.py, infra/stacks/source_stack.py) and the local runtime
applies them to moto's buses, where its stand-in enforces them as EventBridge does (workflow/local/eventbridge.py).
"""

from __future__ import annotations

from typing import Any

from workflow.core.partitions import partition_of
from workflow.models.config import ReplicationConfig, SourceConfig

# The forwarding rule's name in each other source's account and Region (its ARN is what the home bus allows).
FORWARD_RULE_NAME = "ecr-replication-forward"
BUS = "default"


def forwarded_sources(config: ReplicationConfig) -> list[SourceConfig]:
    """The sources whose events a forwarding rule sends to the home bus: every one but the home one."""
    return [source for source in config.sources if source != config.source]


def home_bus_arn(config: ReplicationConfig) -> str:
    """The home account's default event bus in the home Region, where every source's events arrive."""
    home = config.source
    return partition_of(home.region).arn("events", home.region, home.account, f"event-bus/{BUS}")


def forward_rule_arn(source: SourceConfig) -> str:
    """The ARN of `source`'s forwarding rule (on its default bus)."""
    return partition_of(source.region).arn(
        "events", source.region, source.account, f"rule/{FORWARD_RULE_NAME}"
    )


def bus_policy_statements(
    config: ReplicationConfig, organization_id: str | None = None
) -> list[dict[str, Any]]:
    """The home bus policy: one statement per other source account, allowing events:PutEvents of the events its
    forwarding rules send, and no more (none when every source is in the home account)."""
    home = config.source
    partition = partition_of(home.region)
    rules: dict[str, list[str]] = {}
    for source in forwarded_sources(config):
        if source.account != home.account:
            rules.setdefault(source.account, []).append(forward_rule_arn(source))
    statements = []
    for account, arns in sorted(rules.items()):
        condition: dict[str, Any] = {"ArnEquals": {"aws:SourceArn": sorted(arns)}}
        if organization_id:
            condition["StringEquals"] = {"aws:PrincipalOrgID": organization_id}
        statements.append(
            {
                "Sid": f"ecr-replication-forward-{account}",
                "Effect": "Allow",
                "Principal": {"AWS": partition.arn("iam", "", account, "root")},
                "Action": "events:PutEvents",
                "Resource": home_bus_arn(config),
                "Condition": condition,
            }
        )
    return statements
