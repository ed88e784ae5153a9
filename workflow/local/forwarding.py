"""EventBridge's bus-to-bus delivery as AWS does it, which moto (5.2.5) does not.

moto delivers a rule's event-bus target by calling PutEvents on the target bus, so the event arrives stamped with
the target's account and Region, and it never reads the target bus's policy. AWS keeps the event as it was:
`account` and `region` are where it came from (EventBridge user guide, "Amazon EventBridge events": `region`
"identifies the AWS Region where the event originated"; "Sending and receiving events between AWS accounts": the
receiver's rules match the sender's events by `account`), and it delivers to another account's bus only what that
bus's policy allows ("Permissions for Amazon EventBridge event buses"); a delivery refused for missing permissions
goes to the target's dead-letter queue at once, without retries ("Event retry policy and using dead-letter
queues"), and is dropped without one.

moto's targets also get an event without its `account` (its default input template leaves it out), where
EventBridge delivers the whole event ("Amazon EventBridge events": every event has `account`).

`forwarding()` makes moto's rules deliver events whole, and to event-bus targets as above, while it lasts:
- the event goes to every rule of the target bus unchanged (same id, source, account, Region, time, detail);
- to a bus of another account only when a statement of its policy allows `events:PutEvents` to the sending account
  (its root ARN, its id, or `*`) on that bus, with every condition met: `aws:SourceArn` (ArnEquals/ArnLike) naming
  the sending rule; any other condition key (an organization, say, which the local runtime has not) is not met,
  so such a statement allows nothing here;
- a refused event goes to the target's DeadLetterConfig queue (in the rule's account and Region), with the error
  in its message attributes as EventBridge puts them; without one it is dropped.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.events.models import Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.sqs.models import sqs_backends
from moto.utilities.arns import parse_arn

from workflow.models.config import ReplicationConfig
from workflow.models.forwarding import (
    BUS,
    FORWARD_RULE_NAME,
    bus_policy_statements,
    forwarded_sources,
    home_bus_arn,
)
from workflow.pipeline.plan import event_pattern, pattern_text

DEAD_LETTERS = "ecr-replication-forward-dead-letters"
PUT_EVENTS = "events:PutEvents"
WHOLE_EVENT = (
    '{"id": "<id>", "time": <time>, "version": "0", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "region": "<region>", "resources": <resources>, "detail": <detail>}'
)
SOURCE_ARN = "aws:SourceArn"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_allows(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    names = _listed(principal.get("AWS", [])) if isinstance(principal, dict) else []
    return any(name in ("*", account) or str(name).endswith(f":iam::{account}:root") for name in names)


def _conditions_met(condition: dict[str, Any], rule_arn: str) -> bool:
    for operator, keys in condition.items():
        for key, expected in keys.items():
            if key != SOURCE_ARN or operator not in ("ArnEquals", "ArnLike"):
                return False
            if not any(fnmatch.fnmatchcase(rule_arn, pattern) for pattern in _listed(expected)):
                return False
    return True


def allowed(policy: str | None, bus_arn: str, account: str, rule_arn: str) -> bool:
    """Whether a bus policy lets `account`'s rule `rule_arn` put events on the bus `bus_arn`: an Allow applies and
    no Deny does."""
    statements = json.loads(policy)["Statement"] if policy else []
    applying = [
        statement.get("Effect")
        for statement in statements
        if PUT_EVENTS in _listed(statement.get("Action"))
        and _principal_allows(statement.get("Principal"), account)
        and bus_arn in _listed(statement.get("Resource", bus_arn))
        and _conditions_met(statement.get("Condition") or {}, rule_arn)
    ]
    return "Allow" in applying and "Deny" not in applying


def _dead_letter(rule: Rule, target: dict[str, Any], event: dict[str, Any], message: str) -> None:
    queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not queue_arn:
        return
    queue = parse_arn(queue_arn)
    attributes = {
        "RULE_ARN": rule.arn,
        "TARGET_ARN": target["Arn"],
        "ERROR_CODE": "NO_PERMISSIONS",
        "ERROR_MESSAGE": message,
    }
    sqs_backends[queue.account][queue.region].send_message(
        queue.resource_id,
        json.dumps(event),
        message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def _deliver(rule: Rule, target: dict[str, Any], event: dict[str, Any]) -> None:
    bus_arn = target["Arn"]
    arn = parse_arn(bus_arn)
    backend = events_backends[arn.account][arn.region]
    bus = backend.describe_event_bus(arn.resource_id)
    if arn.account != rule.account_id and not allowed(bus.policy, bus_arn, rule.account_id, rule.arn):
        _dead_letter(rule, target, event, f"{bus_arn}'s policy does not allow {rule.arn} to put events")
        return
    for receiving in list(bus.rules.values()):
        receiving.send_to_targets(copy.deepcopy(event))  # type: ignore[arg-type]


@contextlib.contextmanager
def forwarding() -> Iterator[None]:
    """Deliver moto rules' event-bus targets as EventBridge does (see the module docstring) while it lasts."""
    original = Rule.send_to_targets

    def send_to_targets(rule: Rule, event: Any, transform_input: bool = True) -> None:
        buses = [t for t in rule.targets if ":event-bus/" in t["Arn"]]
        if buses and rule.event_pattern.matches_event(event):
            for target in buses:
                _deliver(rule, target, copy.deepcopy(event))
        if len(buses) < len(rule.targets):
            others = copy.copy(rule)
            others.targets = [t for t in rule.targets if t not in buses]
            original(others, event, transform_input)

    with (
        mock.patch.object(Rule, "send_to_targets", send_to_targets),
        mock.patch.object(EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", WHOLE_EVENT),
    ):
        yield


class Forwarding:
    """What the forwarding stacks and the home bus policy deploy, in moto: each other source's rule, with its pattern
    and a dead-letter queue, targeting the home bus, which lets the other accounts' rules put events. Made in moto's
    backends of each account and Region (the local runtime's moto answers every request as the home account);
    `home_events` is a client of the home account's EventBridge in the home Region."""

    def __init__(self, config: ReplicationConfig, home_events: Any) -> None:
        self.config = config
        self.home_events = home_events

    def deploy(self) -> None:
        """The home bus policy, then each other source's forwarding rule and its dead-letter queue."""
        self.grant()
        for source in forwarded_sources(self.config):
            queue = sqs_backends[source.account][source.region].create_queue(DEAD_LETTERS)
            events = events_backends[source.account][source.region]
            events.put_rule(FORWARD_RULE_NAME, event_pattern=pattern_text(event_pattern(self.config, source)))
            target = {
                "Id": "home-bus",
                "Arn": home_bus_arn(self.config),
                "RoleArn": f"arn:aws:iam::{source.account}:role/ecr-replication-forward",
                "DeadLetterConfig": {"Arn": queue.queue_arn},
            }
            events.put_targets(FORWARD_RULE_NAME, None, [target])

    def grant(self) -> None:
        """Give the home bus the policy the source stack deploys (none when every source is in the home account)."""
        statements = bus_policy_statements(self.config)
        if statements:
            policy = {"Version": "2012-10-17", "Statement": statements}
            self.home_events.put_permission(EventBusName=BUS, Policy=json.dumps(policy))

    def revoke(self) -> None:
        """Remove the home bus policy (as a missing or wrong deploy would): other accounts' events are refused."""
        self.home_events.remove_permission(EventBusName=BUS, RemoveAllPermissions=True)

    def dead_letters(self, account: str, region: str) -> list[dict[str, Any]]:
        """The events in a source's forwarding dead-letter queue, with their error code, taken off the queue."""
        sqs = sqs_backends[account][region]
        found = []
        while messages := sqs.receive_message(DEAD_LETTERS, 10, 0, 30, ["All"]):
            for message in messages:
                code = message.message_attributes["ERROR_CODE"]["StringValue"]
                found.append({"event": json.loads(message.body), "error": code})
                sqs.delete_message(DEAD_LETTERS, str(message.receipt_handle))
        return found
