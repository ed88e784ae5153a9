"""lambdas.plan: the Plan state's function, with the packaged config."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lambdas import plan
from tests.unit.conftest import FakeLambdaContext
from workflow.core.exceptions import DestinationNotAllowed, InvalidConfig, InvalidRequest

PUSH_EVENT = {
    "version": "0",
    "id": "6c7b1f1e-0000-0000-0000-000000000000",
    "detail-type": "ECR Image Action",
    "source": "aws.ecr",
    "account": "111111111111",
    "region": "us-east-1",
    "time": "2024-05-01T12:00:00Z",
    "resources": [],
    "detail": {
        "result": "SUCCESS",
        "repository-name": "app",
        "image-digest": "sha256:" + "c" * 64,
        "action-type": "PUSH",
        "image-tag": "release-1.2.0",
    },
}


def test_push_event_plans_one_target_per_destination_with_the_pushed_digest(
    config_file: Callable[..., Path],
    lambda_context: FakeLambdaContext,
    handler_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given the packaged config and an ECR push of a release tag
    config_file()
    # When the Plan function runs
    result = plan.handler({"execution": "push-1", "input": PUSH_EVENT}, lambda_context)
    # Then it returns both destinations, pinned to the pushed digest, and what the Map needs
    assert result["target_count"] == 2
    assert result["max_concurrency"] == 4  # the config's default, read by the Map's MaxConcurrencyPath
    assert result["dry_run"] is False
    assert result["skipped_reason"] is None
    assert [(t["account"], t["region"]) for t in result["targets"]] == [
        ("222222222222", "eu-west-1"),
        ("222222222222", "us-west-2"),
    ]
    assert {t["source_reference"] for t in result["targets"]} == {"sha256:" + "c" * 64}
    assert result["targets"][0]["create_repository"]["tag_mutability"] == "IMMUTABLE"
    json.dumps(result)
    # And its log lines carry the execution name as correlation id
    records = [r for r in handler_logs() if r.get("message") == "planned"]
    assert records[0]["correlation_id"] == "push-1"
    assert records[0]["targets"] == 2


def test_excluded_tag_plans_nothing_and_says_why(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given a manual input with a tag the rule excludes
    config_file()
    # When planned
    result = plan.handler(
        {"execution": "m-1", "input": {"repository": "app", "tag": "release-2.0-rc1"}}, lambda_context
    )
    # Then there are no targets and the reason names the exclude
    assert result["target_count"] == 0
    assert result["targets"] == []
    assert "release-2.0-rc1" in result["skipped_reason"]
    assert "*-rc*" in result["skipped_reason"]


def test_dry_run_and_narrowing_pass_through(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given a manual dry run narrowed to one configured destination
    config_file()
    manual = {
        "repository": "app",
        "tag": "release-1.2.0",
        "destinations": [{"account": "222222222222", "region": "us-west-2"}],
        "dryRun": True,
    }
    # When planned
    result = plan.handler({"execution": "m-2", "input": manual}, lambda_context)
    # Then the plan is a dry run with only that destination
    assert result["dry_run"] is True
    assert [(t["account"], t["region"]) for t in result["targets"]] == [("222222222222", "us-west-2")]


@pytest.mark.parametrize(
    ("execution_input", "error", "message"),
    [
        ({"repository": "app"}, InvalidRequest, "tag: required field is missing"),
        ({"repository": "app", "tag": "release-1", "force": True}, InvalidRequest, "unknown field"),
        (
            {
                "repository": "app",
                "tag": "release-1",
                "destinations": [{"account": "999999999999", "region": "eu-west-1"}],
            },
            DestinationNotAllowed,
            "999999999999/eu-west-1",
        ),
    ],
)
def test_bad_input_raises_the_named_error(
    config_file: Callable[..., Path],
    lambda_context: FakeLambdaContext,
    execution_input: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    # Given bad manual input / When planned / Then the typed error (its class name is the ASL error) propagates
    config_file()
    with pytest.raises(error, match=message):
        plan.handler({"execution": "bad", "input": execution_input}, lambda_context)


def test_an_event_without_the_envelope_is_rejected(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given the raw input without the ASL's {execution, input} envelope / Then InvalidRequest says so
    config_file()
    with pytest.raises(
        InvalidRequest, match=re.escape('expects {"execution": NAME, "input": EXECUTION_INPUT}')
    ):
        plan.handler({"repository": "app", "tag": "release-1"}, lambda_context)


def test_an_invalid_packaged_config_is_reported_with_its_problems(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given a packaged config with a bad source account
    config_file({"source": {"account": "12", "region": "us-east-1"}, "rules": []})
    # When planned / Then InvalidConfig lists the problems
    with pytest.raises(InvalidConfig, match=r"source\.account"):
        plan.handler({"execution": "x", "input": {"repository": "app", "tag": "release-1"}}, lambda_context)


def test_the_default_config_path_is_replication_yaml_beside_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no REPLICATION_CONFIG_FILE / Then the config is read from LAMBDA_TASK_ROOT/replication.yaml
    from lambdas.observability import config_path

    monkeypatch.delenv("REPLICATION_CONFIG_FILE", raising=False)
    assert config_path() == Path(plan.__file__).resolve().parent.parent / "replication.yaml"


def test_the_lag_starts_at_the_push_time_or_at_the_manual_start(
    config_file: Callable[..., Path], lambda_context: FakeLambdaContext
) -> None:
    # Given the packaged config
    config_file()
    started = "2026-12-01T03:00:05.250Z"
    # When planning an ECR push / Then the plan carries the event's time, not the execution's start
    pushed = plan.handler({"execution": "p", "started_at": started, "input": PUSH_EVENT}, lambda_context)
    assert pushed["pushed_at"] == "2024-05-01T12:00:00Z"
    # When planning a manual run / Then it carries the execution's start time
    manual = {"repository": "app", "tag": "release-1.2.0"}
    planned = plan.handler({"execution": "m", "started_at": started, "input": manual}, lambda_context)
    assert planned["pushed_at"] == "2026-12-01T03:00:05.250000Z"
