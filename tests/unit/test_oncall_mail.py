"""On-call mail at 3 a.m.: the runbook link is absolute with no setting (the repository's docs on GitHub at
this version), the email says when the run started and ended, and a failed run fails only after its summary
was published (so the failed-run alarm can leave those runs out: tests/infrastructure/test_alarms.py)."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import workflow
from lambdas import summarize as summarize_handler
from tests.unit.conftest import FakeLambdaContext
from workflow.models.payloads import TargetResult
from workflow.pipeline.runbook import REPOSITORY_URL, RUNBOOK_URL, section_url
from workflow.pipeline.summary import summarize

ROOT = Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FAILED = TargetResult(
    account="222222222222",
    region="eu-west-1",
    repository="app",
    tag="release-1.2.0",
    status="failed",
    error="RegistryAuthError",
    cause="cannot assume ...",
)


def test_the_default_runbook_link_is_absolute_and_pinned_to_this_version() -> None:
    # Given no runbook_url When a failed line is summarized
    summary = summarize([FAILED], repository="app", tag="release-1.2.0")
    # Then its link is the runbook on GitHub, at this version's tag
    version = PROJECT["version"]
    expected = f"{REPOSITORY_URL}/blob/v{version}/docs/runbook.md#registryautherror"
    assert expected.startswith("https://github.com/")
    assert f"    runbook: {expected}" in summary.message
    assert section_url("RegistryAuthError") == expected
    assert f"{REPOSITORY_URL}/blob/v{version}/docs/runbook.md" == RUNBOOK_URL
    # and the repository and version are the package's own (one source each, checked)
    assert PROJECT["urls"]["Source"] == REPOSITORY_URL
    assert workflow.__version__ == version


def test_the_email_says_when_the_run_started_and_ended() -> None:
    # Given a run that started at 03:12:09 and ended 151 s later, of a push at 03:11:58
    started = datetime(2026, 12, 1, 3, 12, 9, tzinfo=UTC)
    summary = summarize(
        [FAILED],
        repository="app",
        tag="release-1.2.0",
        pushed_at=datetime(2026, 12, 1, 3, 11, 58, tzinfo=UTC),
        started_at=started,
        finished_at=datetime(2026, 12, 1, 3, 14, 40, tzinfo=UTC),
    )
    # Then the email's head says so, in UTC
    head = summary.message.split("\n\n")[0].splitlines()
    assert "Pushed:   2026-12-01 03:11:58 UTC" in head
    assert "Started:  2026-12-01 03:12:09 UTC" in head
    assert "Finished: 2026-12-01 03:14:40 UTC (2 min 31 s)" in head


def test_the_summarize_function_takes_the_start_from_the_execution(
    config_file: Any, monkeypatch: Any
) -> None:
    # Given the Summarize state's input with the execution's start time ($$.Execution.StartTime)
    config_file()
    event = {
        "execution": "push-1",
        "execution_id": "arn:aws:states:us-east-1:111111111111:execution:W:push-1",
        "started_at": "2026-12-01T03:12:09.123Z",
        "plan": {"repository": "app", "tag": "release-1.2.0", "dry_run": False, "action": "replicate"},
        "results": [FAILED.model_dump(mode="json")],
        "blocked": [],
    }
    # When summarized / Then the email names it, and when it finished
    output = summarize_handler.handler(event, FakeLambdaContext())
    assert "Started:  2026-12-01 03:12:09 UTC" in output["message"]
    assert re.search(r"Finished: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", output["message"])


def definition() -> dict[str, Any]:
    return json.loads(re.sub(r"\$\{[A-Za-z]+\}", "1", (ROOT / "statemachine.asl.json").read_text()))


def test_the_state_machine_hands_summarize_its_start_time() -> None:
    payload = definition()["States"]["Summarize"]["Parameters"]["Payload"]
    assert payload["started_at.$"] == "$$.Execution.StartTime"


def test_a_run_whose_summary_was_not_published_fails_with_the_notification_error_not_replication_failed() -> (
    None
):
    # Given the Outcome? choice after Notify
    outcome = definition()["States"]["Outcome?"]["Choices"]
    # Then a failed publish is looked at first: ReplicationFailed is reached only when the summary went out,
    # which is what lets the failed-run alarm leave ReplicationFailed out (the email already told on-call)
    assert outcome[0] == {"Variable": "$.notify_error", "IsPresent": True, "Next": "NotificationFailed"}
    assert [choice["Next"] for choice in outcome].index("ReplicationFailed") > 0
    # and a FAILED or PARTIAL summary is always published
    assert summarize([FAILED], repository="app", tag="t", notify_on="failure").notify is True
