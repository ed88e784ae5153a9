"""docs/runbook.md has a section for every error name the product can record, and the email links it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from workflow.core import exceptions
from workflow.core.exceptions import InvalidConfig
from workflow.core.links import build_log_url
from workflow.models.config import parse_config
from workflow.models.payloads import TargetResult
from workflow.pipeline.runbook import anchor, recordable_error_names, section_url
from workflow.pipeline.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
ASL = ROOT / "statemachine.asl.json"
BUILD_ARN = "arn:aws:codebuild:eu-west-1:111111111111:build/ecr-replication-copy:0b1c2d3e-aaaa-bbbb"
TEAM_RUNBOOK = "https://git.example.com/platform/ecr-filtered-replication/-/blob/main/docs/runbook.md"


def definition() -> dict[str, Any]:
    """The real state machine definition, every ${Placeholder} filled."""
    return json.loads(re.sub(r"\$\{[A-Za-z]+\}", "1", ASL.read_text(encoding="utf-8")))


def sections() -> dict[str, str]:
    """Anchor -> body of every `## ` section of the runbook."""
    parts = re.split(r"^## (.+)$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {anchor(heading.strip()): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def missing_sections() -> set[str]:
    return {name for name in recordable_error_names(definition()) if anchor(name) not in sections()}


def test_every_error_name_the_code_can_record_has_a_runbook_section_with_a_fix() -> None:
    # Given the names derived from workflow/core/exceptions.py and the ASL (catchers, Fail states, records)
    names = recordable_error_names(definition())
    # Then the derivation sees the kinds the brief names (not an empty or hand list)
    assert {"RegistryProtocolError", "DestinationTagImmutable", "CopyFailed", "ReplicationFailed"} <= names
    assert {"States.Timeout", "States.TaskFailed", "CodeBuild.AccountLimitExceededException"} <= names
    assert {"CodeBuild.ThrottlingException", "Lambda.Unknown", "Lambda.ServiceException"} <= names
    assert "States.ALL" not in names
    # and every one has its section, which says how to fix it
    assert missing_sections() == set()
    body = sections()
    for name in names:
        assert "**Fix" in body[anchor(name)], f"the section of {name} says no fix"


def test_a_new_exception_without_a_section_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a new error class in workflow/core/exceptions.py and no runbook section for it
    new = type("ManifestTooOld", (exceptions.ReplicationError,), {})
    monkeypatch.setattr(exceptions, "ManifestTooOld", new, raising=False)
    # Then the check names it
    assert missing_sections() == {"ManifestTooOld"}


def test_anchors_are_the_github_heading_slugs() -> None:
    # Given error names with dots / Then the anchor is GitHub's slug of the heading
    assert anchor("States.Timeout") == "statestimeout"
    assert anchor("CodeBuild.AccountLimitExceededException") == "codebuildaccountlimitexceededexception"
    assert section_url("RegistryAuthError") == "docs/runbook.md#registryautherror"
    assert section_url("RegistryAuthError", TEAM_RUNBOOK) == f"{TEAM_RUNBOOK}#registryautherror"


def failed(error: str, **fields: Any) -> TargetResult:
    return TargetResult(
        account="222222222222",
        region="eu-west-1",
        repository="app",
        tag="release-1.2.0",
        status="failed",
        error=error,
        **fields,
    )


def test_each_failed_line_of_the_email_links_its_runbook_section() -> None:
    # Given a PARTIAL run with two failures, under the team's runbook URL
    results = [
        failed("RegistryAuthError", cause="cannot assume role"),
        failed("CopyFailed", cause="the copy build failed", build_arn=BUILD_ARN),
        TargetResult(
            account="222222222222", region="us-west-2", repository="app", tag="release-1.2.0", status="copied"
        ),
    ]
    summary = summarize(results, repository="app", tag="release-1.2.0", runbook_url=TEAM_RUNBOOK)
    # Then each failed line carries its section link, and only failed lines do
    assert f"    runbook: {TEAM_RUNBOOK}#registryautherror" in summary.message
    assert f"    runbook: {TEAM_RUNBOOK}#copyfailed" in summary.message
    assert [line.runbook for line in summary.lines][2] is None
    # and the failed copy links its build's log
    assert f"    build log: {build_log_url(BUILD_ARN)}" in summary.message
    assert summary.message.count("build log:") == 1
    # and without a configured URL, the link is the runbook's path in the repository
    default = summarize(results[:1], repository="app", tag="release-1.2.0")
    assert "    runbook: docs/runbook.md#registryautherror" in default.message


def test_a_build_carried_as_the_cause_links_its_log_too() -> None:
    # Given a record whose cause is the failed Build (a CodeBuild error caught as is)
    cause = json.dumps({"Arn": BUILD_ARN, "Id": "ecr-replication-copy:0b1c", "BuildStatus": "FAILED"})
    summary = summarize([failed("States.TaskFailed", cause=cause)], repository="app", tag="t")
    # Then the line links the build's console log page
    assert summary.lines[0].build_log == build_log_url(BUILD_ARN)


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        (
            BUILD_ARN,
            "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/111111111111/projects/"
            "ecr-replication-copy/build/ecr-replication-copy%3A0b1c2d3e-aaaa-bbbb/log?region=eu-west-1",
        ),
        (
            "arn:aws-cn:codebuild:cn-north-1:111111111111:build/p:1",
            "https://cn-north-1.console.amazonaws.cn/codesuite/codebuild/111111111111/projects/p/build/"
            "p%3A1/log?region=cn-north-1",
        ),
        ("arn:aws:states:us-east-1:111111111111:execution:m:e", None),
        ("not an arn", None),
    ],
)
def test_build_log_url_from_the_build_arn(arn: str, url: str | None) -> None:
    # Given a build ARN (or something else) / Then its console log page per partition, or None
    assert build_log_url(arn) == url


def test_the_runbook_url_is_validated() -> None:
    # Given a config whose runbook_url is not a URL / Then InvalidConfig names the field
    rule = {
        "name": "r",
        "tags": {"include": ["*"]},
        "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
    }
    base = {"source": {"account": "111111111111", "region": "us-east-1"}, "rules": [rule]}
    with pytest.raises(InvalidConfig, match=r"notifications\.runbook_url"):
        parse_config({**base, "notifications": {"runbook_url": "docs/runbook.md#x"}})
    assert parse_config({**base, "notifications": {"runbook_url": TEAM_RUNBOOK}}).notifications.runbook_url
