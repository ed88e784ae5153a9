"""sync and stale tags: destination tags of rules with propagate_deletes that the source lacks (moto).

test_sync's world: the source has app {release-1, release-2, release-3-rc1, dev-1}; eu-west-1 holds
app:release-1 and "old". Here eu-west-1 also holds release-0 (accepted, gone from the source) and dev-0.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.fake_ecr import push, use_moto_environment
from tests.unit.test_sync import CONFIG, ROLE, build_world, state_machine, tags_of
from workflow.models.config import parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync


def with_deletes(opted: bool = True) -> Any:
    raw = copy.deepcopy(CONFIG)
    raw["rules"][0]["propagate_deletes"] = opted
    return parse_config(raw)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    use_moto_environment(monkeypatch)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients = build_world(AwsClients(boto3.Session()))
        destination = clients.client("ecr", "eu-west-1", ROLE)
        push(destination, "app", "release-0", 70)
        push(destination, "app", "dev-0", 80)
        yield clients


def stale(report: Any) -> list[tuple[str, str, list[str], str, str | None]]:
    return [
        (a.repository, a.tag, a.destinations, a.status, a.outcome)
        for a in report.actions
        if a.kind == "delete"
    ]


def test_sync_reports_stale_tags_of_opted_in_rules_and_deletes_nothing_without_the_flag(
    world: AwsClients,
) -> None:
    # Given the rule propagating deletes / When synced without --apply-deletes
    report = sync(with_deletes(), SyncOptions(state_machine_arn=state_machine(world)), clients=world)
    # Then release-0 (accepted, gone from the source) is reported, dev-0 and "old" are not, nothing deleted
    assert stale(report) == [("app", "release-0", ["222222222222/eu-west-1"], "planned", None)]
    assert (report.stale, report.deleted) == (1, 0)
    assert "release-0" in tags_of(world.client("ecr", "eu-west-1", ROLE), "app")
    assert ("stale tags (gone from the source)", 1) in report.rows()


def test_apply_deletes_removes_only_the_stale_tag(world: AwsClients) -> None:
    # Given the same / When synced with --apply-deletes
    options = SyncOptions(state_machine_arn=state_machine(world), apply_deletes=True)
    report = sync(with_deletes(), options, clients=world)
    # Then release-0 is deleted, and every other tag stays
    assert stale(report) == [("app", "release-0", ["222222222222/eu-west-1"], "done", "deleted")]
    assert (report.deleted, report.failed) == (1, 0)
    assert sorted(tags_of(world.client("ecr", "eu-west-1", ROLE), "app")) == [
        "dev-0",
        "old",
        "release-1",
        "release-2",
    ]


def test_without_opt_in_sync_reports_no_stale_tags(world: AwsClients) -> None:
    # Given the rule without propagate_deletes / When synced with --apply-deletes / Then nothing is stale
    options = SyncOptions(state_machine_arn=state_machine(world), apply_deletes=True)
    report = sync(with_deletes(False), options, clients=world)
    assert stale(report) == []
    assert "release-0" in tags_of(world.client("ecr", "eu-west-1", ROLE), "app")
