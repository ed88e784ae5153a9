"""Config help: every schema field is described, a config without notifications warns, an unknown field
gets a "did you mean"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.conftest import replication_config
from workflow.cli import main
from workflow.commands.schema import config_schema
from workflow.core.exceptions import InvalidConfig
from workflow.models.config import parse_config


def _properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(model.field, property schema) of the root and of every $defs model."""
    models = {"(root)": schema, **schema.get("$defs", {})}
    for model, body in models.items():
        for name, prop in body.get("properties", {}).items():
            yield f"{model}.{name}", prop


def test_every_field_of_the_schema_has_a_description() -> None:
    # Given the config's JSON Schema (editors show `description` as hover help)
    schema = config_schema()
    # When looking at every property of every model
    undescribed = [name for name, prop in _properties(schema) if not prop.get("description", "").strip()]
    # Then each one says what it is
    assert list(_properties(schema))
    assert undescribed == []


def test_a_config_without_notifications_validates_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a valid config with no notifications block
    config = replication_config()
    del config["notifications"]
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(config))
    # When validating it / Then it is valid (exit 0), with one warning line on stderr saying no one is told
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "valid" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert "notifications" in warnings[0]
    assert "no one is emailed" in warnings[0]
    # and --json carries it in `warnings`
    assert main(["validate", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [w for w in document["warnings"] if "notifications" in w]
    # and a config with emails has none
    path.write_text(json.dumps(replication_config()))
    assert main(["validate", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["rules"][0]["tags"].update(includes=["x"]),
            "rules[0].tags.includes: unknown field; did you mean 'include'?",
        ),
        (lambda c: c.update(notification={}), "notification: unknown field; did you mean 'notifications'?"),
        (
            lambda c: c["rules"][0]["destinations"][0].update(region=["eu-west-1"]),
            "rules[0].destinations[0].region: unknown field; did you mean 'regions'?",
        ),
        (
            lambda c: c["rules"][0].update(zzz=1),
            "rules[0].zzz: unknown field (fields here: name, repositories, tags, destinations",
        ),
    ],
    ids=["tags", "root", "destination", "no-close-match"],
)
def test_an_unknown_field_gets_a_did_you_mean(change: Any, expected: str) -> None:
    # Given a config with a misspelt field
    config = replication_config()
    change(config)
    # When parsing it / Then the problem names the field and the closest known one
    with pytest.raises(InvalidConfig) as raised:
        parse_config(config)
    assert any(problem.startswith(expected) for problem in raised.value.problems), raised.value.problems
