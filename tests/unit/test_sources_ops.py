"""`status` and `sync` over several sources (moto as AWS): each source is read where it is (another account's
through its read-only role), and a repository of the same name in two sources stays two images."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.fake_ecr import digest, push, use_moto_environment
from tests.unit.test_sync import IDLE, PASS_MACHINE, SOURCE
from workflow.cli import main
from workflow.ops.inventory import AwsClients
from workflow.ops.sync.executions import execution_name

PARTNER = "333333333333"
DESTINATION = "222222222222"
TARGET_ROLE = f"arn:aws:iam::{DESTINATION}:role/ecr-replication-target"
SOURCE_ROLE = f"arn:aws:iam::{PARTNER}:role/ecr-replication-source-access"
HOME_NAME, PARTNER_NAME = f"{SOURCE}/us-east-1", f"{PARTNER}/us-west-2"
CONFIG: dict[str, Any] = {
    "sources": [{"account": SOURCE, "region": "us-east-1"}, {"account": PARTNER, "region": "us-west-2"}],
    "rules": [
        {
            "name": "builds",
            "sources": [HOME_NAME],
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [{"account": DESTINATION, "regions": ["eu-west-1"]}],
        },
        {
            "name": "partner",
            "sources": [PARTNER_NAME],
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {"account": DESTINATION, "regions": ["eu-west-1"], "repository": "partner/{repository}"}
            ],
        },
    ],
}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """app:release-1 in the home source (digest 10) and in the partner account's us-west-2 (digest 70, read
    through its role); the destination has the home one as app:release-1, and no partner/app."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE):
        aws = AwsClients(boto3.Session())
        home = aws.client("ecr", "us-east-1")
        home.create_repository(repositoryName="app")
        push(home, "app", "release-1", 10)
        partner = aws.client("ecr", "us-west-2", SOURCE_ROLE)
        partner.create_repository(repositoryName="app")
        push(partner, "app", "release-1", 70)
        destination = aws.client("ecr", "eu-west-1", TARGET_ROLE)
        destination.create_repository(repositoryName="app")
        push(destination, "app", "release-1", 10)
        yield aws


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


def test_status_names_the_image_in_each_source(
    world: AwsClients, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given app:release-1 in two sources, each replicated to its own destination repository
    When `status` asks for app:release-1 Then each source's image has its entry, with its own digest."""
    assert main(["status", config_file, "app:release-1", "--json"]) == 1
    entries = json.loads(capsys.readouterr().out)["destinations"]
    assert [
        (e["source"], e["destination"]["repository"], e["state"], e["source_digest"]) for e in entries
    ] == [
        (HOME_NAME, "app", "present", digest(10)),
        (PARTNER_NAME, "partner/app", "missing", digest(70)),
    ]
    # And the table names the source of each row
    assert main(["status", config_file, "app:release-1"]) == 1
    table = capsys.readouterr().out
    assert f"{PARTNER_NAME} app:release-1  {DESTINATION}/eu-west-1 partner/app  missing" in table


def test_status_of_the_image_in_the_second_source(
    world: AwsClients, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When `status --source` names the partner's us-west-2 / Then only its image, read through its role
    assert main(["status", config_file, "app:release-1", "--source", PARTNER_NAME, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [(e["source"], e["state"]) for e in document["destinations"]] == [(PARTNER_NAME, "missing")]
    # And a source that is not configured is bad input
    assert main(["status", config_file, "app:release-1", "--source", f"{PARTNER}/us-east-1"]) == 2
    assert "is not one of the sources" in capsys.readouterr().err


def test_sync_dry_run_plans_the_image_of_the_second_source_alone(
    world: AwsClients, machine: str, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the home image at its destination and the partner's missing
    When `sync --dry-run` walks every source Then it plans one execution, for the partner's image, naming its
    source; nothing is started."""
    assert main(["sync", config_file, "--dry-run", "--json", "--state-machine-arn", machine]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [
        (a["kind"], a["source"], a["digest"], [f"{d['account']}/{d['region']}" for d in a["destinations"]])
        for a in report["actions"]
    ] == [("start", PARTNER_NAME, digest(70), [f"{DESTINATION}/eu-west-1"])]
    assert report["counts"]["repositories"] == 2
    assert report["counts"]["present"] == 1
    sfn = world.client("stepfunctions", "us-east-1")
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []
    # And --source limits it to one source, as plain text
    assert (
        main(["sync", config_file, "--dry-run", "--source", PARTNER_NAME, "--state-machine-arn", machine])
        == 0
    )
    out = capsys.readouterr().out
    assert f"for app:release-1 -> {DESTINATION}/eu-west-1 [source {PARTNER_NAME}]" in out


def test_sync_starts_the_execution_with_the_source_in_its_input(
    world: AwsClients, machine: str, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When sync starts executions / Then the partner image's input names its source, so the Plan reads it there
    assert main(["sync", config_file, "--no-wait", "--state-machine-arn", machine]) == 0
    sfn = world.client("stepfunctions", "us-east-1")
    (listed,) = sfn.list_executions(stateMachineArn=machine)["executions"]
    started = json.loads(sfn.describe_execution(executionArn=listed["executionArn"])["input"])
    assert started == {
        "repository": "app",
        "tag": "release-1",
        "destinations": [{"account": DESTINATION, "region": "eu-west-1"}],
        "source": {"account": PARTNER, "region": "us-west-2"},
    }


def test_execution_names_of_one_image_in_two_sources_differ() -> None:
    # Given the same repository, digest, tag and destinations in two sources / Then two names (two images)
    same = ("app", digest(1), "release-1", [f"{DESTINATION}/eu-west-1"])
    names = {
        execution_name(*same, day=date(2026, 1, 15), source=source)
        for source in (None, HOME_NAME, PARTNER_NAME)
    }
    assert len(names) == 3
