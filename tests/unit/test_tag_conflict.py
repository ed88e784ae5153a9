"""No silent overwrite: a rule's `on_tag_conflict` (replace | refuse) at a destination tag that points at
another digest, through plan, precheck, sync (--dry-run names the digest it would replace) and status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.conftest import replication_config
from tests.unit.fake_ecr import digest, push, use_moto_environment
from tests.unit.test_precheck import (
    ECR_DESTINATION,
    SOURCE_DIGEST,
    SOURCE_REGISTRY,
    ReadOnlyRegistry,
    make_target,
)
from tests.unit.test_sync import CONFIG, IDLE, PASS_MACHINE, ROLE, SOURCE, build_world
from workflow.cli import main
from workflow.core.exceptions import DestinationTagConflict
from workflow.engine import copier as copy
from workflow.models.config import parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.status import image_status
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync
from workflow.pipeline.plan import plan
from workflow.pipeline.precheck import check_target
from workflow.pipeline.request import parse_manual_input

OTHER = "sha256:" + "9" * 64


def refusing(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with its first rule refusing to replace a destination tag."""
    raw = json.loads(json.dumps(config))
    raw["rules"][0]["on_tag_conflict"] = "refuse"
    return raw


def test_a_rule_says_replace_by_default_and_refuse_wins_among_the_rules_of_a_destination() -> None:
    # Given a rule that refuses, and another that replaces, both sending app:release-1 to 222222222222
    raw = refusing(replication_config())
    raw["rules"].append({**replication_config()["rules"][0], "name": "also"})
    # When planning / Then each target refuses (the stricter rule wins); without refuse, targets replace
    request = parse_manual_input({"repository": "app", "tag": "release-1"})
    assert {t.on_tag_conflict for t in plan(request, parse_config(raw)).targets} == {"refuse"}
    assert {t.on_tag_conflict for t in plan(request, parse_config(replication_config())).targets} == {
        "replace"
    }


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_precheck_of_a_refusing_target_fails_before_writing_when_the_tag_points_elsewhere(
    aws: None, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    # Given a destination whose tag points at another digest (HEAD-only clients: any write raises)
    registries = {
        SOURCE_REGISTRY: ReadOnlyRegistry({("app", "release-1.2.0"): SOURCE_DIGEST}),
        ECR_DESTINATION: ReadOnlyRegistry({("mirror/app", "release-1.2.0"): OTHER}),
    }
    monkeypatch.setattr(copy, "make_client", lambda registry, **_: registries[registry])
    # When a target of a refusing rule is prechecked / Then DestinationTagConflict names both digests
    with pytest.raises(DestinationTagConflict, match=f"points at {OTHER}, not {SOURCE_DIGEST}"):
        check_target(make_target(on_tag_conflict="refuse", create_repository=None), dry_run=dry_run)
    # and the copy job of a replacing target would carry its rule's choice
    registries[ECR_DESTINATION] = ReadOnlyRegistry({})
    outcome = check_target(make_target(on_tag_conflict="refuse", create_repository=None), dry_run=True)
    assert outcome.job.on_tag_conflict == "refuse"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """test_sync's world (eu-west-1 holds release-2's digest as `old`), plus eu-west-1's release-2 under another
    digest, so a replication of release-2 there would replace digest(99)."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE):
        clients = build_world(AwsClients(boto3.Session()))
        push(clients.client("ecr", "eu-west-1", ROLE), "app", "release-2", 99)
        yield clients


def machine(clients: AwsClients) -> str:
    client = clients.client("stepfunctions", "us-east-1")
    return str(
        client.create_state_machine(
            name="m", definition=PASS_MACHINE, roleArn=f"arn:aws:iam::{SOURCE}:role/s"
        )["stateMachineArn"]
    )


def test_sync_dry_run_names_the_digest_it_would_replace(
    world: AwsClients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given app:release-2 at eu-west-1 under digest(99), the source's being digest(20)
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(CONFIG))
    # When running sync --dry-run
    assert main(["sync", str(path), "--dry-run", "--state-machine-arn", machine(world)]) == 0
    out = capsys.readouterr().out
    # Then the line putting release-2 at eu-west-1 names the digest the run would replace there
    (line,) = [line for line in out.splitlines() if "app:release-2" in line and "eu-west-1" in line]
    assert line.startswith("would tag app:release-2")
    assert line.endswith(f"(replaces {digest(99)} at 222222222222/eu-west-1)")
    # and --json names it on that destination (None where nothing is replaced)
    assert main(["sync", str(path), "--dry-run", "--json", "--state-machine-arn", machine(world)]) == 0
    actions = json.loads(capsys.readouterr().out)["actions"]
    replaced = {
        f"{d['account']}/{d['region']}": d["replaces"]
        for a in actions
        if a["tag"] == "release-2"
        for d in a["destinations"]
    }
    assert replaced == {"222222222222/eu-west-1": digest(99), "222222222222/us-west-2": None}


def test_sync_of_a_refusing_rule_fails_that_destination_with_destination_tag_conflict(
    world: AwsClients,
) -> None:
    # Given the same world and a rule that refuses to replace
    config = parse_config(refusing(CONFIG))
    # When syncing (dry run, and for real without waiting)
    for dry_run in (True, False):
        report = sync(
            config,
            SyncOptions(state_machine_arn=machine(world), dry_run=dry_run, wait=False),
            clients=world,
        )
        # Then eu-west-1's release-2 is a failed action named DestinationTagConflict, nothing started for it
        (conflict,) = [a for a in report.actions if a.status == "failed"]
        assert conflict.error is not None
        assert conflict.error.startswith("DestinationTagConflict: ")
        assert digest(99) in conflict.error
        assert conflict.destinations == ["222222222222/eu-west-1"]
        started = [a for a in report.actions if a.kind == "start" and a.tag == "release-2"]
        assert [a.destinations for a in started] == [["222222222222/us-west-2"]]
        assert report.failed == 1


def test_status_names_the_digest_a_replication_would_replace_or_that_the_rule_refuses(
    world: AwsClients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given app:release-2 stale at eu-west-1
    report = image_status(parse_config(CONFIG), "app", "release-2", clients=world)
    (stale,) = [e for e in report.entries if e.state == "stale"]
    # Then its entry says a replication would replace digest(99)
    assert stale.to_dict()["would_replace"] == digest(99)
    assert stale.to_dict()["tag_conflict"] == "replace"
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(CONFIG))
    main(["status", str(path), "app:release-2"])
    assert f"a replication would replace {digest(99)}" in capsys.readouterr().out
    # and under a refusing rule it says the run would fail instead
    path.write_text(json.dumps(refusing(CONFIG)))
    main(["status", str(path), "app:release-2"])
    out = capsys.readouterr().out
    assert "refuses to replace it (on_tag_conflict: refuse): DestinationTagConflict" in out
