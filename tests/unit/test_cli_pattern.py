"""`ecr-replicate pattern`: the EventBridge pattern, whether it is exact or widened (what, why), and its
length and wildcard complexity against EventBridge's limits, as text and as `--json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.eventbridge_matcher import matches
from workflow.cli import main

SOURCE = {"account": "111111111111", "region": "us-east-1"}
DESTINATIONS = [{"account": "222222222222", "regions": ["eu-west-1"]}]


def write_config(tmp_path: Path, *rules: dict[str, Any]) -> str:
    named = [{"name": f"r{i}", "destinations": DESTINATIONS, **rule} for i, rule in enumerate(rules)]
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump({"source": SOURCE, "rules": named}))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["pattern", *args]) == 0
    return capsys.readouterr().out


def push(tag: str) -> dict[str, Any]:
    detail = {"action-type": "PUSH", "result": "SUCCESS", "repository-name": "app", "image-tag": tag}
    return {"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": detail}


def keys(node: Any) -> list[str]:
    """Every key of every object in a JSON document."""
    if isinstance(node, dict):
        return [*node, *(k for value in node.values() for k in keys(value))]
    return [k for item in node for k in keys(item)] if isinstance(node, list) else []


def test_a_semver_rule_says_widened_why_and_the_length_and_still_filters_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the rule: tags semver:>=1.0.0
    config = write_config(tmp_path, {"repositories": ["app"], "tags": {"include": ["semver:>=1.0.0"]}})
    # When `pattern` runs
    lines = run(capsys, config).splitlines()
    pattern = json.loads(lines[-1])
    # Then it says widened, which pattern, why, what it accepts instead, and the length against 2,048
    assert lines[0].startswith("widened: ")
    assert lines[1] == (
        "  image-tag 'semver:>=1.0.0' (rule r0): EventBridge cannot compare versions; "
        "accepts tags starting with a digit 1-9, also after v or V"
    )
    assert f"length: {len(lines[-1]):,} of 2,048 characters" in lines
    # And CI's other tags start nothing, while versions do
    assert not matches(pattern, push("sha-3f2a1c9"))
    assert not matches(pattern, push("pr-12"))
    assert matches(pattern, push("v1.4.2"))


def test_json_reports_the_same_in_snake_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a semver rule and a case-insensitive glob with a `*` inside
    config = write_config(
        tmp_path,
        {"repositories": ["app"], "tags": {"include": ["semver:^2.1.0"]}},
        {"repositories": ["web"], "tags": {"include": ["rel-*-final"], "case_insensitive": True}},
    )
    # When `pattern --json` runs
    report = json.loads(run(capsys, config, "--json"))
    # Then every key is snake_case, and it says widened, what, why, the length and the complexity
    assert all(
        key.islower() and "-" not in key for key in keys({k: v for k, v in report.items() if k != "pattern"})
    )
    assert report["exact"] is False
    assert report["widened"] == [
        {
            "rules": ["r0"],
            "field": "image-tag",
            "pattern": "semver:^2.1.0",
            "reason": "EventBridge cannot compare versions",
            "accepts": "tags starting 2., v2. or V2.",
        },
        {
            "rules": ["r1"],
            "field": "image-tag",
            "pattern": "rel-*-final",
            "reason": "EventBridge's wildcard filter is case-sensitive",
            "accepts": "tags ending '-final' (any case)",
        },
    ]
    assert report["length"] == len(json.dumps(report["pattern"], separators=(",", ":")))
    assert report["max_length"] == 2048
    assert report["wildcard_complexity"] == {"repository_name": 0, "image_tag": 0}
    assert report["max_wildcard_complexity"] == 9


def test_rules_eventbridge_can_say_give_an_exact_pattern(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given globs EventBridge can say exactly (prefix, suffix, wildcard, case-insensitive prefix)
    config = write_config(
        tmp_path,
        {"repositories": ["app"], "tags": {"include": ["release-*", "*-stable", "v*-lts"]}},
        {"repositories": ["web"], "tags": {"include": ["Release-*"], "case_insensitive": True}},
    )
    # When `pattern` runs / Then it says exact, and the complexity of the one wildcard
    out = run(capsys, config)
    assert out.splitlines()[0] == "exact: a push starts an execution only when a rule accepts it"
    assert "wildcard complexity: repository-name 0, image-tag 2 (EventBridge refuses a field over 9)" in out
    report = json.loads(run(capsys, config, "--json"))
    assert (report["exact"], report["widened"]) == (True, [])


def test_a_pattern_over_the_size_limit_says_which_step_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 40 repositories of 100 characters (the exact pattern is over 2,048 characters)
    names = [f"group-{i % 4}/" + "x" * 90 + f"{i:03d}" for i in range(40)]
    config = write_config(tmp_path, {"repositories": names, "tags": {"include": ["release-*"]}})
    # When `pattern --json` runs
    report = json.loads(run(capsys, config, "--json"))
    # Then the size widening is listed, with the exact length and what the pattern accepts instead
    [size] = report["widened"]
    assert size["field"] == "pattern"
    assert size["reason"].startswith("the exact pattern is 4,")
    assert size["reason"].endswith("characters, over EventBridge's 2,048")
    assert size["accepts"] == (
        "repository prefixes of 100 characters: repositories starting with the first characters of the listed ones"
    )
    assert report["length"] <= 2048
