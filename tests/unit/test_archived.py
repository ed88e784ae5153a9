"""Archived images (ECR's archive storage class): `status` and `sync` say "archived", against moto made to
behave as ECR does (workflow/local/archive.py): listed only when asked for, described with their status.

The world of test_sync: the source holds app:release-1 and release-2; eu-west-1 has release-1 and release-2's
digest (tagged "old"); us-west-2 has nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.unit.fake_ecr import digest, use_moto_environment
from tests.unit.test_sync import CONFIG, DESTINATION, IDLE, PASS_MACHINE, ROLE, SOURCE, build_world
from workflow.cli import main
from workflow.local.archive import activate, applied
from workflow.models.config import parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.status import image_status
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync

EU, US = f"{DESTINATION}/eu-west-1", f"{DESTINATION}/us-west-2"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """test_sync's world in moto, with ECR's archive storage class (executions stay RUNNING)."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE), applied():
        yield build_world(AwsClients(boto3.Session()))


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


@pytest.fixture
def machine(world: AwsClients) -> str:
    client = world.client("stepfunctions", "us-east-1")
    return str(
        client.create_state_machine(
            name="m", definition=PASS_MACHINE, roleArn=f"arn:aws:iam::{SOURCE}:role/s"
        )["stateMachineArn"]
    )


def archive(client: object, repository: str, tag: str) -> None:
    """Archive the image `tag` names, as `aws ecr update-image-storage-class --target-storage-class ARCHIVE`."""
    client.update_image_storage_class(  # type: ignore[attr-defined]
        repositoryName=repository, imageId={"imageTag": tag}, targetStorageClass="ARCHIVE"
    )


def test_the_stand_in_lists_an_archived_image_only_when_asked_and_says_archived(world: AwsClients) -> None:
    # Given app:release-1 archived in the source
    source = world.client("ecr", "us-east-1")
    archive(source, "app", "release-1")
    # When the repository is listed by default, and with imageStatus ANY
    default = source.describe_images(repositoryName="app")["imageDetails"]
    every = source.describe_images(repositoryName="app", filter={"imageStatus": "ANY"})["imageDetails"]
    # Then only ACTIVE images are listed by default, and the archived one says so when asked for
    assert digest(10) not in {d["imageDigest"] for d in default}
    assert {d["imageDigest"]: d["imageStatus"] for d in every}[digest(10)] == "ARCHIVED"


def test_status_says_archived_where_the_archived_source_image_is_missing_and_exits_1(
    world: AwsClients, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given app:release-1 archived in the source: at eu-west-1 already, missing at us-west-2
    archive(world.client("ecr", "us-east-1"), "app", "release-1")
    # When asking its status
    code = main(["status", config_file, "app:release-1"])
    # Then exit 1 (a destination lacks it), present at eu-west-1, archived at us-west-2, and one line saying
    # why it is not copied and how to restore it
    out = capsys.readouterr().out
    assert code == 1
    assert f"app:release-1  {EU} app  present   {digest(10)[:19]}" in out
    assert f"app:release-1  {US} app  archived  -" in out
    assert (
        "app:release-1: ARCHIVED in the source (ImageArchived): it cannot be pulled until restored "
        "(UpdateImageStorageClass to STANDARD, or Restore in the console); docs/runbook.md#imagearchived"
    ) in out
    # And --json says the same for scripts
    assert main(["status", config_file, "app:release-1", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["counts"]["archived"] == 1
    assert {
        (d["destination"]["region"], d["state"], d["source_status"]) for d in document["destinations"]
    } == {
        ("eu-west-1", "present", "ARCHIVED"),
        ("us-west-2", "archived", "ARCHIVED"),
    }


def test_sync_dry_run_reports_an_archived_source_image_and_plans_no_copy_of_it(
    world: AwsClients, machine: str, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given app:release-1 archived in the source (missing at us-west-2)
    archive(world.client("ecr", "us-east-1"), "app", "release-1")
    # When sync --dry-run runs
    code = main(["sync", config_file, "--dry-run", "--state-machine-arn", machine])
    # Then exit 0 (nothing failed: nothing can be copied until it is restored), one line naming it and how
    # to restore it, a row counting it, and no execution planned for it
    out = capsys.readouterr().out
    assert code == 0
    assert (
        f"archived app:release-1 ({digest(10)[:19]}) is ARCHIVED in the source: not copied to {US}; restore it "
        "(UpdateImageStorageClass to STANDARD) to replicate it (ImageArchived)"
    ) in out
    assert re.search(r"^archived in the source, not copied \(targets\) +1$", out, re.MULTILINE)
    assert "would start execution" in out  # release-2 and services/api still are
    assert "for app:release-1" not in out


def test_sync_leaves_an_image_archived_at_a_destination_alone(world: AwsClients, machine: str) -> None:
    # Given eu-west-1's copy of app:release-1 archived there (a lifecycle policy of that account, say)
    archive(world.client("ecr", "eu-west-1", ROLE), "app", "release-1")
    # When syncing
    report = sync(parse_config(CONFIG), SyncOptions(state_machine_arn=machine, dry_run=True), clients=world)
    # Then it is counted as archived there, and no copy would push it back (which would restore it)
    assert report.archived_at_destination == 1
    starts = [
        a for a in report.actions if a.kind == "start" and (a.repository, a.tag) == ("app", "release-1")
    ]
    assert [a.destinations for a in starts] == [[US]]


def test_status_of_an_image_archived_at_a_destination_says_so(world: AwsClients) -> None:
    # Given eu-west-1's copy of app:release-1 archived there
    archive(world.client("ecr", "eu-west-1", ROLE), "app", "release-1")
    # When asking its status / Then archived there, with the digest, not missing
    report = image_status(parse_config(CONFIG), "app", "release-1", clients=world)
    entries = {f"{e.account}/{e.region}": e for e in report.entries}
    assert (entries[EU].state, entries[EU].digest, entries[EU].source_status) == (
        "archived",
        digest(10),
        "ACTIVE",
    )


def test_a_restored_source_image_replicates_again(world: AwsClients, machine: str) -> None:
    # Given app:release-1 archived in the source, then restored (ACTIVATING, then ACTIVE)
    source = world.client("ecr", "us-east-1")
    archive(source, "app", "release-1")
    source.update_image_storage_class(
        repositoryName="app", imageId={"imageTag": "release-1"}, targetStorageClass="STANDARD"
    )
    config = parse_config(CONFIG)
    options = SyncOptions(state_machine_arn=machine, dry_run=True)
    # When syncing while it is ACTIVATING, and once it is ACTIVE
    activating = sync(config, options, clients=world)
    from moto.ecr.models import ecr_backends

    activate(ecr_backends[SOURCE]["us-east-1"], "app", digest(10))
    active = sync(config, options, clients=world)
    # Then it is archived (not yet pullable) while restored, and replicates once ACTIVE
    assert [a.kind for a in activating.actions if (a.repository, a.tag) == ("app", "release-1")] == [
        "archived"
    ]
    assert [a.kind for a in active.actions if (a.repository, a.tag) == ("app", "release-1")] == ["start"]


def test_a_tag_archived_in_the_source_is_not_a_stale_tag_to_delete(world: AwsClients, machine: str) -> None:
    # Given a rule propagating deletes, and app:release-1 archived in the source (present at eu-west-1)
    raw = json.loads(json.dumps(CONFIG))
    raw["rules"][0]["propagate_deletes"] = True
    archive(world.client("ecr", "us-east-1"), "app", "release-1")
    # When sync looks for tags gone from the source, to delete them
    options = SyncOptions(state_machine_arn=machine, dry_run=True, apply_deletes=True)
    report = sync(parse_config(raw), options, clients=world)
    # Then the archived tag is still the source's: nothing would delete it at eu-west-1
    assert [(a.repository, a.tag) for a in report.actions if a.kind == "delete"] == []
