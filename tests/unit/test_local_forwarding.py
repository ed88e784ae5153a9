"""workflow/local/forwarding.py: bus-to-bus delivery as EventBridge does it, where moto is kinder or wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.events.models import events_backends
from moto.sqs.models import sqs_backends

from tests.unit.fake_ecr import use_moto_environment
from workflow.local.forwarding import allowed, forwarding

HOME = DEFAULT_ACCOUNT_ID
PARTNER = "333333333333"
HOME_BUS = f"arn:aws:events:us-east-1:{HOME}:event-bus/default"
RULE = f"arn:aws:events:us-west-2:{PARTNER}:rule/ecr-replication-forward"
ECR = {"source": ["aws.ecr"]}


def statement(**changes: Any) -> dict[str, Any]:
    return {
        "Sid": "forward",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{PARTNER}:root"},
        "Action": "events:PutEvents",
        "Resource": HOME_BUS,
        "Condition": {"ArnEquals": {"aws:SourceArn": [RULE]}},
        **changes,
    }


@pytest.fixture
def buses(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The partner's us-west-2 rule forwarding ECR events to the home bus in us-east-1 (with a dead-letter queue),
    and a home rule delivering what arrives to a queue."""
    use_moto_environment(monkeypatch)
    with mock_aws():
        partner = events_backends[PARTNER]["us-west-2"]
        dead = sqs_backends[PARTNER]["us-west-2"].create_queue("dead")
        partner.put_rule("ecr-replication-forward", event_pattern=json.dumps(ECR))
        target = {"Id": "home", "Arn": HOME_BUS, "DeadLetterConfig": {"Arn": dead.queue_arn}}
        partner.put_targets("ecr-replication-forward", None, [target])
        home = events_backends[HOME]["us-east-1"]
        arrived = sqs_backends[HOME]["us-east-1"].create_queue("arrived")
        home.put_rule("home", event_pattern=json.dumps(ECR))
        home.put_targets("home", None, [{"Id": "queue", "Arn": arrived.queue_arn}])
        yield {"partner": partner, "home": home}


def push(partner: Any) -> None:
    partner.put_events(
        [{"Source": "aws.ecr", "DetailType": "ECR Image Action", "Detail": json.dumps({"x": 1})}]
    )


def messages(account: str, region: str, queue: str) -> list[Any]:
    return list(sqs_backends[account][region].receive_message(queue, 10, 0, 30, ["All"]))


def test_moto_alone_restamps_the_event_and_ignores_the_bus_policy(buses: dict[str, Any]) -> None:
    # Given no bus policy at all / When the partner's event is forwarded by moto itself
    push(buses["partner"])
    (arrived,) = messages(HOME, "us-east-1", "arrived")
    # Then moto delivered it (AWS would refuse another account's event) as the home account's and Region's,
    # without `account`: what the stand-in corrects
    event = json.loads(arrived.body)
    assert (event.get("account"), event["region"]) == (None, "us-east-1")


def test_an_allowed_event_arrives_whole_with_its_own_account_and_region(buses: dict[str, Any]) -> None:
    buses["home"].put_permission("default", "", "", "", {}, json.dumps({"Statement": [statement()]}))
    with forwarding():
        push(buses["partner"])
    (arrived,) = messages(HOME, "us-east-1", "arrived")
    event = json.loads(arrived.body)
    assert (event["account"], event["region"], event["source"]) == (PARTNER, "us-west-2", "aws.ecr")
    assert messages(PARTNER, "us-west-2", "dead") == []


@pytest.mark.parametrize(
    "policy",
    [
        None,
        statement(Condition={"ArnEquals": {"aws:SourceArn": [RULE.replace("us-west-2", "eu-west-1")]}}),
        statement(Principal={"AWS": "arn:aws:iam::444444444444:root"}),
        statement(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}),
        statement(Effect="Deny"),
    ],
)
def test_a_refused_event_goes_to_the_dead_letter_queue(buses: dict[str, Any], policy: Any) -> None:
    # Given no policy, or one for another rule, another account, an organization, or a Deny
    if policy is not None:
        buses["home"].put_permission("default", "", "", "", {}, json.dumps({"Statement": [policy]}))
    with forwarding():
        push(buses["partner"])
    # Then nothing arrives, and the event waits in the partner's dead-letter queue, saying why
    assert messages(HOME, "us-east-1", "arrived") == []
    (dead,) = messages(PARTNER, "us-west-2", "dead")
    assert json.loads(dead.body)["account"] == PARTNER
    assert dead.message_attributes["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"


def test_the_home_accounts_own_regions_need_no_policy(buses: dict[str, Any]) -> None:
    # Given a forwarding rule of the home account's eu-west-1, and no bus policy
    west = events_backends[HOME]["eu-west-1"]
    west.put_rule("ecr-replication-forward", event_pattern=json.dumps(ECR))
    west.put_targets("ecr-replication-forward", None, [{"Id": "home", "Arn": HOME_BUS}])
    # When its event is forwarded / Then it arrives, from eu-west-1 (one account: the role's policy is enough)
    with forwarding():
        push(west)
    (arrived,) = messages(HOME, "us-east-1", "arrived")
    assert (json.loads(arrived.body)["account"], json.loads(arrived.body)["region"]) == (HOME, "eu-west-1")
    # And the policy check itself names the account and rule it allows
    assert allowed(None, HOME_BUS, PARTNER, RULE) is False
    assert allowed(json.dumps({"Statement": [statement()]}), HOME_BUS, PARTNER, RULE) is True
    denied = [statement(), statement(Sid="deny", Effect="Deny")]
    assert allowed(json.dumps({"Statement": denied}), HOME_BUS, PARTNER, RULE) is False
