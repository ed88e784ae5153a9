"""`ecr-replicate schema`: the committed JSON Schema is the model's, and it validates configs as the CLI does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from workflow.cli import main

ROOT = Path(__file__).parents[2]
SCHEMA_FILE = ROOT / "schema" / "replication.schema.json"
EXAMPLE = ROOT / "examples" / "replication.yaml"


class Yaml12Loader(yaml.SafeLoader):
    """YAML as editors (yaml-language-server) and the config loader read it: `on`/`off`/`yes`/`no` are strings."""


Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def example() -> Any:
    """The example config as an editor reads it."""
    return yaml.load(EXAMPLE.read_text(), Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The committed schema."""
    return dict(json.loads(SCHEMA_FILE.read_text()))


def test_the_schema_command_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the model When `ecr-replicate schema` runs Then it prints exactly the committed file
    # (regenerate it with `ecr-replicate schema > schema/replication.schema.json`)
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text(), (
        "the config model changed: run `ecr-replicate schema > schema/replication.schema.json` and commit it"
    )


def test_the_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_schema_accepts_the_example_config(schema: dict[str, Any]) -> None:
    # Given the example config (which the CLI validates) When checked against the schema Then no error
    config = example()
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(config)) == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda c: c.update(unknown_field=1), "unknown_field"),
        (lambda c: c["source"].update(account=111111111111), "account"),
        (lambda c: c.pop("rules"), "rules"),
        (lambda c: c["rules"][0]["tags"].update(include=[]), "include"),
        (lambda c: c.update(max_concurrency=0), "max_concurrency"),
        (lambda c: c["notifications"].update(on="sometimes"), "on"),
    ],
    ids=["unknown-field", "account-not-a-string", "no-rules", "empty-include", "concurrency-0", "bad-enum"],
)
def test_the_schema_refuses_a_broken_config(schema: dict[str, Any], change: Any, where: str) -> None:
    # Given the example with one mistake When checked against the schema Then it is refused at that field
    config = example()
    change(config)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(config))
    assert errors
    assert any(where in f"{list(error.absolute_path)} {error.message}" for error in errors)


def test_editors_are_told_where_the_schema_is() -> None:
    # Given the README and the example Then both carry the yaml-language-server line editors read
    line = "# yaml-language-server: $schema="
    assert EXAMPLE.read_text().startswith(line + "../schema/replication.schema.json\n")
    assert line in (ROOT / "README.md").read_text()
