"""Reconciliation with organization destinations: an account that joins an OU is backfilled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.fake_ecr import push, use_moto_environment
from tests.unit.fleet import Organization, deploy_fleet_role, fleet_config, organization
from tests.unit.strict_sts import refuse_missing_roles
from tests.unit.test_sync import IDLE, SOURCE, executions, state_machine
from workflow.models.config import FLEET_ROLE_NAME, parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.sync.syncer import reconcile

RELEASES = {"release-1": 10, "release-2": 20}
# moto serializes the stand-in's AccessDenied (a generic STS error, not one of STS's modelled shapes) with a warning.
pytestmark = pytest.mark.filterwarnings("ignore:Exception\\(AccessDenied\\):UserWarning")


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AwsClients, Organization]]:
    """moto with executions that stay RUNNING, STS refusing roles that do not exist, an organization whose
    management account is the source, and app:release-1/2 at the source and at OU teams' accounts (a2, a3)."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE):
        refuse_missing_roles(monkeypatch)
        clients = AwsClients(boto3.Session())
        org = organization(clients.client("organizations", "us-east-1"))
        source = clients.client("ecr", "us-east-1")
        source.create_repository(repositoryName="app")
        for tag, n in RELEASES.items():
            push(source, "app", tag, n)
        for name in ("a2", "a3"):
            deploy_fleet_role(org.accounts[name])
            replica = clients.client("ecr", "eu-west-1", role_of(org.accounts[name]))
            replica.create_repository(repositoryName="app")
            for tag, n in RELEASES.items():
                push(replica, "app", tag, n)
        yield clients, org


def role_of(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{FLEET_ROLE_NAME}"


def started(clients: AwsClients, arn: str) -> list[dict[str, Any]]:
    """The inputs of the executions started so far, by tag."""
    return sorted(
        (json.loads(execution["input"]) for execution in executions(clients, arn)), key=lambda i: i["tag"]
    )


def test_an_account_added_to_the_unit_receives_the_current_releases_at_the_next_reconciliation(
    fleet: tuple[AwsClients, Organization],
) -> None:
    clients, org = fleet
    config = parse_config(
        fleet_config({"organizational_units": [org.units["teams"]], "regions": ["eu-west-1"]}, source=SOURCE)
    )
    arn = state_machine(clients)
    # Given the OU's accounts hold every release: a reconciliation repairs nothing
    quiet = reconcile(config, state_machine_arn=arn, clients=clients)
    assert (quiet["counts"]["started"], quiet["counts"]["failed"]) == (0, 0)
    assert quiet["counts"]["present"] == 4

    # When a new account is created and moved into the OU, before the StackSet has created its role
    joined = org.account("joined", "teams")
    early = reconcile(config, state_machine_arn=arn, clients=clients)
    # Then the next reconciliation names the missing role for it, and starts nothing
    failures = [a for a in early["actions"] if a["status"] == "failed"]
    assert [(a["kind"], [(d["account"], d["region"]) for d in a["destinations"]]) for a in failures] == [
        ("inventory", [(joined, "eu-west-1")])
    ]
    assert failures[0]["error"].startswith(f"DestinationRoleMissing: cannot assume {role_of(joined)}")
    assert started(clients, arn) == []

    # When the StackSet's automatic deployment has created the role there
    deploy_fleet_role(joined)
    repaired = reconcile(config, state_machine_arn=arn, clients=clients)
    # Then the next reconciliation starts one execution per current release, for exactly that account
    assert (repaired["counts"]["started"], repaired["counts"]["failed"]) == (2, 0)
    assert started(clients, arn) == [
        {"repository": "app", "tag": tag, "destinations": [{"account": joined, "region": "eu-west-1"}]}
        for tag in sorted(RELEASES)
    ]
