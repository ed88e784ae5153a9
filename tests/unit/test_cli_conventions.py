"""One CLI convention: every sub-command's --help says what it does and shows an example; the state machine
comes from the flag, $ECR_REPLICATE_STATE_MACHINE_ARN or the config; `plan --tags-file` tries the rules on
a list of tags; `demo --push` needs `--config`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.conftest import replication_config
from tests.unit.fake_ecr import use_moto_environment
from tests.unit.test_sync import CONFIG, IDLE, PASS_MACHINE, SOURCE, build_world
from workflow.cli import COMMAND_MODULES, main
from workflow.ops.inventory import AwsClients

COMMANDS = [module.rsplit(".", 1)[1] for module in COMMAND_MODULES]
ENV = "ECR_REPLICATE_STATE_MACHINE_ARN"


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main([command, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_help_has_a_description_and_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a sub-command When asking its --help
    text = _help(command, capsys)
    # Then a description follows the usage (a paragraph before the arguments)
    paragraphs = text.split("\n\n")
    assert paragraphs[0].startswith(f"usage: ecr-replicate {command}")
    description = paragraphs[1]
    assert not description.startswith(("positional arguments", "options")), text
    assert len(description.split()) >= 8
    # and it ends with an example that runs it
    examples = text.split("\nexamples:\n", 1)
    assert len(examples) == 2, text
    assert f"ecr-replicate {command}" in examples[1]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    use_moto_environment(monkeypatch)
    monkeypatch.delenv(ENV, raising=False)
    with mock_aws(config=IDLE):
        yield build_world(AwsClients(boto3.Session()))


def machine(clients: AwsClients, name: str) -> str:
    client = clients.client("stepfunctions", "us-east-1")
    return str(
        client.create_state_machine(
            name=name, definition=PASS_MACHINE, roleArn=f"arn:aws:iam::{SOURCE}:role/s"
        )["stateMachineArn"]
    )


def executions_of(clients: AwsClients, arn: str) -> int:
    return len(
        clients.client("stepfunctions", "us-east-1").list_executions(stateMachineArn=arn)["executions"]
    )


def test_start_and_sync_find_the_state_machine_in_the_environment_or_the_config(
    world: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two state machines, one named in the config and one in the environment
    configured, exported, flagged = (
        machine(world, "configured"),
        machine(world, "exported"),
        machine(world, "flag"),
    )
    path = tmp_path / "replication.json"
    path.write_text(json.dumps({**CONFIG, "state_machine_arn": configured}))
    start = ["start", "--repository", "app", "--tag", "release-1", "--json"]
    # When started with --config only / Then the config's machine runs it
    assert main([*start, "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["execution_arn"].split(":")[-2] == "configured"
    # and sync needs no flag either
    assert main(["sync", str(path), "--no-wait", "--json"]) == 0
    capsys.readouterr()
    assert executions_of(world, configured) == 4
    # When the environment names another / Then it wins over the config, and the flag over both
    monkeypatch.setenv(ENV, exported)
    assert main([*start, "--config", str(path)]) == 0
    assert main([*start, "--config", str(path), "--state-machine-arn", flagged]) == 0
    capsys.readouterr()
    assert (executions_of(world, exported), executions_of(world, flagged)) == (1, 1)


def test_without_any_state_machine_start_and_sync_say_where_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(CONFIG))
    assert main(["start", "--repository", "app", "--tag", "release-1"]) == 2
    assert main(["sync", str(path)]) == 2
    for line in capsys.readouterr().err.splitlines():
        assert f"set ${ENV}" in line
        assert "state_machine_arn" in line


def test_a_state_machine_arn_in_the_config_belongs_to_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a config naming a state machine of another account
    path = tmp_path / "replication.json"
    path.write_text(
        json.dumps(
            {
                **replication_config(),
                "state_machine_arn": "arn:aws:states:us-east-1:999999999999:stateMachine:W",
            }
        )
    )
    # Then validate refuses it, naming the field
    assert main(["validate", str(path)]) == 2
    assert (
        "state_machine_arn: 'arn:aws:states:us-east-1:999999999999:stateMachine:W' is not in the source"
        in (capsys.readouterr().err)
    )


def write_tags(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tags.txt"
    path.write_text(text)
    return str(path)


def test_plan_tags_file_tries_the_rules_on_every_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the rule (release-*, excluding *-rc*) and a list of real tags, with a comment and a blank line
    config = tmp_path / "replication.json"
    config.write_text(json.dumps(replication_config()))
    tags = write_tags(
        tmp_path, "# from aws ecr list-images\nrelease-1.0.0\n\nrelease-1.1.0-rc1\nsha-3f2a9c1\n"
    )
    # When planning them
    assert main(["plan", str(config), "--repository", "app", "--tags-file", tags]) == 0
    out = capsys.readouterr().out.splitlines()
    # Then each tag says where it goes or why not, and a total
    assert out[0] == "release-1.0.0: -> 222222222222/eu-west-1 (releases), 222222222222/us-west-2 (releases)"
    assert out[1].startswith("release-1.1.0-rc1: skipped: ")
    assert "excluded" in out[1]
    assert out[2].startswith("sha-3f2a9c1: skipped: ")
    assert out[3] == "3 tag(s): 1 replicate, 2 skipped"
    # and --json holds one plan per tag, in the shape of a single plan
    assert main(["plan", str(config), "--repository", "app", "--tags-file", tags, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["counts"] == {"tags": 3, "replicate": 1, "skipped": 2}
    assert [p["tag"] for p in document["plans"]] == ["release-1.0.0", "release-1.1.0-rc1", "sha-3f2a9c1"]
    assert main(["plan", str(config), "--repository", "app", "--tag", "release-1.0.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == document["plans"][0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("release-1\nbad tag\n", "line 2: "),
        ("# nothing\n\n", "no tag in it"),
    ],
    ids=["bad-line", "empty"],
)
def test_plan_tags_file_refuses_a_bad_file_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    config = tmp_path / "replication.json"
    config.write_text(json.dumps(replication_config()))
    assert main(["plan", str(config), "--repository", "app", "--tags-file", write_tags(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_demo_push_needs_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--push", "app:release-1"]) == 2
    assert "--push needs --config" in capsys.readouterr().err


def test_demo_config_with_a_bad_config_or_push_is_bad_input_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "replication.json"
    config.write_text(json.dumps({**replication_config(), "rules": []}))
    assert main(["demo", "--config", str(config)]) == 2
    config.write_text(json.dumps(replication_config()))
    assert main(["demo", "--config", str(config), "--push", "App:x"]) == 2
    err: Any = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: invalid replication config: rules")
    assert err[1].startswith("error: --push 'App:x': ")
