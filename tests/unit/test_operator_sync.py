"""sync and status as an operator (moto): destinations read through the read-only role, every write left to an
execution (a missing tag, a stale tag's delete), a destination in another partition named, not read; and the
config's `operators` checked."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.iam import recorder
from tests.unit.fake_ecr import digest, push, use_moto_environment
from tests.unit.test_sync import CONFIG, IDLE, ROLE, SOURCE, build_world, state_machine, tags_of
from workflow.core.exceptions import InvalidConfig, InvalidRequest
from workflow.models.config import parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.status import image_status
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync

READER = "arn:aws:iam::222222222222:role/ecr-replication-reader"
OPERATORS = {"principals": [f"arn:aws:iam::{SOURCE}:role/oncall-*"]}


def operated(**rule: Any) -> dict[str, Any]:
    raw = copy.deepcopy(CONFIG)
    raw["rules"][0].update(rule)
    raw["operators"] = OPERATORS
    return raw


@pytest.fixture(autouse=True)
def not_for_the_coverage_test(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """These calls are made with moto's base credentials standing for an operator: they are kept out of the
    IAM coverage test's records (tests/iam/test_operator_access.py checks an operator's calls as one)."""
    session_file = os.environ[recorder.RECORD_ENV]
    recorder.install(str(tmp_path_factory.mktemp("operator") / "calls.jsonl"))
    yield
    recorder.install(session_file)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """test_sync's world, plus eu-west-1's release-0 (accepted by the rule, gone from the source)."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE):
        clients = build_world(AwsClients(boto3.Session()))
        push(clients.client("ecr", "eu-west-1", ROLE), "app", "release-0", 70)
        yield clients


def recording_assumed_roles() -> tuple[AwsClients, set[str]]:
    """Clients that note the RoleArn of every AssumeRole they make."""
    roles: set[str] = set()
    clients = AwsClients(
        boto3.Session(),
        on_client=lambda client: client.meta.events.register(
            "provide-client-params.sts.AssumeRole", lambda params, **_: roles.add(params["RoleArn"])
        ),
    )
    return clients, roles


def test_an_operators_sync_reads_through_the_reader_and_leaves_every_write_to_an_execution(
    world: AwsClients,
) -> None:
    # Given rules that propagate deletes, and a sync run by an operator with --apply-deletes
    config = parse_config(operated(propagate_deletes=True))
    machine = state_machine(world)
    before = tags_of(world.client("ecr", "eu-west-1", ROLE), "app")
    options = SyncOptions(state_machine_arn=machine, as_operator=True, apply_deletes=True, wait=False)
    # When it runs
    report = sync(config, options, clients=AwsClients(boto3.Session()))
    # Then the destination is untouched by the sync itself (no tag put, no tag deleted)
    assert tags_of(world.client("ecr", "eu-west-1", ROLE), "app") == before
    # and release-2 (its digest already at eu-west-1 as "old") is in release-2's execution, with us-west-2
    sfn = world.client("stepfunctions", "us-east-1")
    inputs = [
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
    ]
    assert {
        "repository": "app",
        "tag": "release-2",
        "destinations": [
            {"account": "222222222222", "region": "eu-west-1"},
            {"account": "222222222222", "region": "us-west-2"},
        ],
    } in inputs
    # and the stale release-0 is a delete execution, with the digest it must still point at
    assert {
        "repository": "app",
        "tag": "release-0",
        "destinations": [{"account": "222222222222", "region": "eu-west-1"}],
        "action": "delete",
        "digest": digest(70),
    } in inputs
    assert not [a for a in report.actions if a.kind == "tag"]
    assert report.failed == 0


def test_operators_read_through_the_reader_role_only(world: AwsClients) -> None:
    # Given an operator's status and sync --dry-run
    config = parse_config(operated())
    clients, roles = recording_assumed_roles()
    image_status(config, "app", "release-1", clients=clients, as_operator=True)
    sync(
        config,
        SyncOptions(state_machine_arn=state_machine(world), as_operator=True, dry_run=True),
        clients=clients,
    )
    # Then the only role they assumed is the destination's read-only one
    assert roles == {READER}


def test_an_operator_cannot_read_a_destination_in_another_partition_and_is_told_so(world: AwsClients) -> None:
    # Given a destination in aws-cn besides the others
    raw = operated()
    raw["rules"][0]["destinations"].append(
        {
            "account": "777777777777",
            "regions": ["cn-north-1"],
            "credentials": {
                "secret": "ecr-replication/cn",
                "principal": "arn:aws-cn:iam::777777777777:user/r",
            },
        }
    )
    # When an operator asks the status / Then it is unknown, saying why, and the others are read
    report = image_status(
        parse_config(raw), "app", "release-1", clients=AwsClients(boto3.Session()), as_operator=True
    )
    (cn,) = [e for e in report.entries if e.region == "cn-north-1"]
    assert cn.state == "unknown"
    assert cn.error is not None
    assert "another partition: an operator of the source account cannot read it" in cn.error
    assert {e.state for e in report.entries if e.region != "cn-north-1"} == {"present", "missing"}


def test_reading_as_an_operator_needs_operators_in_the_config(world: AwsClients) -> None:
    with pytest.raises(InvalidRequest, match="needs `operators` in the config"):
        image_status(parse_config(CONFIG), "app", "release-1", as_operator=True)
    with pytest.raises(InvalidRequest, match="needs `operators` in the config"):
        sync(parse_config(CONFIG), SyncOptions(state_machine_arn=state_machine(world), as_operator=True))


@pytest.mark.parametrize(
    ("operators", "problem"),
    [
        ({"principals": ["oncall"]}, "operators.principals: not an IAM role or user ARN (pattern): 'oncall'"),
        (
            {"principals": ["arn:aws:iam::999999999999:role/oncall"]},
            "operators.principals[0]: 'arn:aws:iam::999999999999:role/oncall' is not a principal of the source account",
        ),
        (
            {"principals": [f"arn:aws:iam::{SOURCE}:role/x"], "role_name": "ecr-replication-target"},
            "operators.role_name: 'ecr-replication-target' is a destination's role_name",
        ),
        ({"principals": []}, "operators.principals: List should have at least 1 item"),
    ],
    ids=["not-an-arn", "other-account", "role-name-taken", "none"],
)
def test_operators_are_checked(operators: dict[str, Any], problem: str) -> None:
    raw = copy.deepcopy(CONFIG)
    raw["operators"] = operators
    with pytest.raises(InvalidConfig) as raised:
        parse_config(raw)
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems
