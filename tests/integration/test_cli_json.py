"""One `--json` convention, walked over every command: snake_case keys, one shape for a destination
(`{"account", "region", "repository", ...}`), the same keys whatever the run (dry or real, waiting or not).

The AWS commands run against moto, `copy` between two loopback registries. Documents the product passes
through whole are not its own keys and are not walked: `pattern`'s EventBridge event pattern (AWS's field
names), `schema`'s JSON Schema (the spec's keywords) and `start`'s execution `output` (the workflow's).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.integration.images import ImageBuilder
from tests.integration.registries import RegistryServer
from tests.unit.fake_ecr import use_moto_environment
from tests.unit.test_sync import CONFIG, PASS_MACHINE, SOURCE, build_world
from workflow.cli import COMMAND_MODULES, main
from workflow.ops.inventory import AwsClients

pytestmark = pytest.mark.integration

SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
DESTINATION_KEYS = {"account", "region", "repository"}
# Values that are documents of someone else's format, passed through whole.
FOREIGN = {("start", "output"), ("pattern", "pattern")}
WITHOUT_JSON = {"demo"}  # prints a narrated run; it has no --json


def key_paths(value: Any, command: str, path: str = "") -> set[str]:
    """Every key path of a JSON value (list items as `[]`), foreign documents left out."""
    if isinstance(value, dict):
        paths = set()
        for key, item in value.items():
            paths.add(f"{path}.{key}")
            if (command, key) not in FOREIGN:
                paths |= key_paths(item, command, f"{path}.{key}")
        return paths
    if isinstance(value, list):
        return set().union(*(key_paths(item, command, f"{path}[]") for item in value)) if value else set()
    return set()


def destinations_in(value: Any) -> Iterator[dict[str, Any]]:
    """Every object that names an account and Region, but the sources' (`source`, `sources`)."""
    if isinstance(value, dict):
        if {"account", "region"} <= value.keys():
            yield value
        for key, item in value.items():
            if key not in ("source", "sources"):
                yield from destinations_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from destinations_in(item)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    use_moto_environment(monkeypatch)
    monkeypatch.delenv("ECR_REPLICATE_STATE_MACHINE_ARN", raising=False)
    # Executions run to their end (start --wait), said explicitly: moto's config is global.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients = build_world(AwsClients(boto3.Session()))
        machine = clients.client("stepfunctions", "us-east-1").create_state_machine(
            name="m", definition=PASS_MACHINE, roleArn=f"arn:aws:iam::{SOURCE}:role/s"
        )["stateMachineArn"]
        config = tmp_path / "replication.json"
        config.write_text(json.dumps({**CONFIG, "state_machine_arn": machine}))
        yield {"config": str(config), "machine": machine}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 1), (argv, err)
    assert out, (argv, err)
    return json.loads(out)


def test_every_command_json_is_snake_case_with_one_destination_shape_and_stable_keys(
    world: dict[str, str],
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = world["config"]
    builder.image(repo, "v1")
    start = [
        "start",
        "--config",
        config,
        "--repository",
        "app",
        "--tag",
        "release-1",
        "--poll-seconds",
        "0.01",
    ]
    # Given every command that has --json, run as a script would
    outputs: dict[str, list[Any]] = {
        "validate": [run_json(capsys, "validate", config)],
        "plan": [
            run_json(capsys, "plan", config, "--repository", "app", "--tag", "release-1"),
            run_json(capsys, "plan", config, "--repository", "app", "--tag", "dev-1"),
        ],
        "pattern": [run_json(capsys, "pattern", config)],
        "schema": [run_json(capsys, "schema")],
        "copy": [
            run_json(
                capsys,
                "copy",
                f"{source_registry.host}/{repo}:v1",
                f"{dest_registry.host}/{repo}:v1",
                "--insecure-registry",
                source_registry.host,
                "--insecure-registry",
                dest_registry.host,
            )
        ],
        "status": [run_json(capsys, "status", config, "app", "--all")],
        "sync": [
            run_json(capsys, "sync", config, "--dry-run"),
            run_json(capsys, "sync", config, "--no-wait"),
        ],
        # (named: moto names every unnamed execution "None", where AWS makes up a unique name)
        "start": [run_json(capsys, *start, "--name", "a"), run_json(capsys, *start, "--name", "b", "--wait")],
    }
    commands = {module.rsplit(".", 1)[1] for module in COMMAND_MODULES}
    assert set(outputs) == commands - WITHOUT_JSON
    for command in WITHOUT_JSON:
        assert main([command, "--help"]) == 0
        assert "--json" not in capsys.readouterr().out
    for command, documents in outputs.items():
        if command == "schema":
            continue  # the JSON Schema's own keywords ($defs, additionalProperties, ...)
        if command == "pattern" and "pattern" not in documents[0]:
            continue  # the bare event pattern: EventBridge's field names
        # Then every key is snake_case
        keys = {path.rsplit(".", 1)[1] for document in documents for path in key_paths(document, command)}
        assert sorted(k for k in keys if not SNAKE.fullmatch(k)) == [], command
        # and every destination is {"account", "region", "repository", ...}
        for document in documents:
            for destination in destinations_in(document):
                assert destination.keys() >= DESTINATION_KEYS, (command, destination)
    # And a dry run and a real run (or a run not waited for, and one waited for) have the same keys
    for command in ("sync", "start"):
        dry, real = (key_paths(document, command) for document in outputs[command])
        assert dry == real, (command, dry ^ real)
    plans = outputs["plan"]
    assert key_paths(plans[0], "plan") >= key_paths(plans[1], "plan")
