"""`ecr-replicate validate | plan | pattern`: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workflow.cli import main

EXAMPLE = str(Path(__file__).parents[2] / "examples" / "replication.yaml")


def test_validate_prints_a_one_line_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "valid: 2 rule(s) (production, disaster-recovery), 3 destination(s)" in out


def test_validate_bad_config_exits_2_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a config with two mistakes
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "source: {account: '1', region: us-east-1}\n"
        "rules:\n  - name: x\n    tags: {include: ['re:(']}\n"
        "    destinations: [{account: '222222222222', regions: [eu-west-1]}]\n"
    )
    # When validated / Then exit 2 and both problems on stderr, nothing on stdout
    assert main(["validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "source.account: '1' is not a 12-digit AWS account id" in captured.err
    assert "rules[0].tags.include: 're:(' is not a valid regular expression" in captured.err


def test_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", EXAMPLE, "--repository", "app", "--tag", "release-1.0.0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["skipped_reason"] is None
    assert result["targets"][0] == {
        "account": "222222222222",
        "region": "eu-west-1",
        "repository": "app",
        "tag": "release-1.0.0",
        "rule": "production",
        "source": "111111111111/us-east-1",
    }
    assert len(result["targets"]) == 3


def test_plan_narrowed_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "plan",
        EXAMPLE,
        "--repository",
        "app",
        "--tag",
        "release-1",
        "--destination",
        "333333333333:eu-central-1",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "replicates to 1 destination(s)" in out
    assert "333333333333/eu-central-1  mirror/app:release-1  (rule disaster-recovery)" in out


def test_plan_nothing_to_replicate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", EXAMPLE, "--repository", "app", "--tag", "dev-1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["targets"] == []
    assert "dev-1" in result["skipped_reason"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--destination", "999999999999:eu-west-1"], "not configured for this repository"),
        (["--destination", "nonsense"], "is not ACCOUNT:REGION"),
    ],
)
def test_plan_bad_input_exits_2(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", EXAMPLE, "--repository", "app", "--tag", "release-1", *extra])
    assert code == 2
    assert message in capsys.readouterr().err


def test_pattern_prints_the_event_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pattern", EXAMPLE]) == 0
    pattern = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert pattern["detail-type"] == ["ECR Image Action"]
    assert pattern["detail"]["$or"][1] == {"repository-name": ["app"], "image-tag": [{"prefix": "release-"}]}
