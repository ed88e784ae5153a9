"""Summary: outcome, lines, totals and the email text a person on call acts on."""

from __future__ import annotations

import json

import pytest

from workflow.core.links import console_url, state_machine_arn_of
from workflow.models.payloads import TargetResult
from workflow.pipeline.summary import CAUSE_LIMIT, outcome_of, short_cause, summarize

EXECUTION = "arn:aws:states:us-east-1:111111111111:execution:ecr-replication:push-abc123"
DIGEST = "sha256:" + "ab" * 32


def result(region: str, status: str = "copied", **fields: object) -> TargetResult:
    base: dict[str, object] = {
        "account": "222222222222",
        "region": region,
        "repository": "app",
        "tag": "release-1.2.0",
        "status": status,
    }
    if status in ("copied", "tagged", "present", "planned"):
        base["digest"] = DIGEST
    return TargetResult.model_validate({**base, **fields})


def lambda_cause(error_type: str, message: str) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": ["  File x\n"] * 20})


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "SKIPPED"),
        (["copied", "tagged", "present"], "SUCCEEDED"),
        (["planned", "present"], "SUCCEEDED"),
        (["copied", "failed"], "PARTIAL"),
        (["failed", "failed"], "FAILED"),
    ],
)
def test_outcome_follows_the_failed_targets(statuses: list[str], expected: str) -> None:
    # Given targets with these statuses / When the outcome is computed / Then it is as expected
    results = [result(f"r{i}", s, error="E" if s == "failed" else None) for i, s in enumerate(statuses)]
    assert outcome_of(results) == expected


def test_a_superseded_destination_is_counted_and_explained_but_is_no_failure() -> None:
    # Given one destination copied and one whose tag was left to a newer push
    results = [result("eu-west-1"), result("us-west-2", "superseded", digest=DIGEST)]
    # When summarized
    summary = summarize(results, repository="app", tag="release-1.2.0", execution_arn=EXECUTION)
    # Then the execution succeeded, the totals count it, and the email says what superseded means
    assert summary.outcome == "SUCCEEDED"
    assert (summary.totals.copied, summary.totals.superseded) == (1, 1)
    assert [line.action for line in summary.lines] == ["copied", "superseded"]
    assert "2 destinations: 1 copied, 1 superseded" in summary.message
    assert "tag left to the newer push" in summary.message


def test_partial_summary_names_what_failed_where_and_why_with_the_console_link() -> None:
    # Given one copied destination and one that failed with ImageNotFound
    results = [
        result(
            "eu-west-1", "copied", bytes_copied=3 * 1024 * 1024, blobs_copied=4, blobs_skipped=1, seconds=2.5
        ),
        result(
            "us-west-2", "failed", error="ImageNotFound", cause=lambda_cause("ImageNotFound", "src/app gone")
        ),
    ]
    # When summarized
    summary = summarize(results, repository="app", tag="release-1.2.0", execution_arn=EXECUTION)
    # Then the outcome, subject and body tell the on-call person what to do
    assert summary.outcome == "PARTIAL"
    assert summary.notify is True
    assert summary.subject == "ECR replication PARTIAL: app:release-1.2.0 (1 of 2 destinations failed)"
    assert (
        "- 222222222222/us-west-2 app:release-1.2.0\n    error: ImageNotFound\n    cause: src/app gone"
        in (summary.message)
    )
    assert console_url(EXECUTION) in summary.message
    assert '"destinations": [{"account": "222222222222", "region": "us-west-2"}]' in summary.message
    assert (
        "--state-machine-arn arn:aws:states:us-east-1:111111111111:stateMachine:ecr-replication "
        "--repository app --tag release-1.2.0 --destination 222222222222:us-west-2 --wait"
    ) in summary.message
    assert "stackTrace" not in summary.message
    # And the totals add up, and the Fail state's cause carries the whole summary
    assert summary.totals.model_dump() == {
        "targets": 2,
        "copied": 1,
        "tagged": 0,
        "present": 0,
        "superseded": 0,
        "deleted": 0,
        "kept": 0,
        "absent": 0,
        "planned": 0,
        "failed": 1,
        "blocked": 0,
        "bytes_copied": 3 * 1024 * 1024,
        "blobs_copied": 4,
        "blobs_skipped": 1,
        "seconds": 2.5,
    }
    assert summary.failure_cause is not None
    assert summary.failure_cause.startswith(summary.subject + "\n\n")
    assert [line.action for line in summary.lines] == ["copied", "failed"]
    assert summary.lines[1].cause == "src/app gone"


def test_delete_outcomes_read_deleted_kept_moved_since_and_absent() -> None:
    # Given a delete's three outcomes and one destination that refused
    digest = "sha256:" + "d" * 64
    results = [
        result("eu-west-1", "deleted", digest=digest),
        result("us-west-2", "kept", digest=digest, kept_reason="moved since"),
        result("eu-central-1", "absent", digest=digest),
        result("ap-south-1", "failed", digest=digest, error="TagDeleteRefused", cause="IMMUTABLE"),
    ]
    # When summarized as a delete
    summary = summarize(
        results, repository="app", tag="release-2.4.1", action="delete", execution_arn=EXECUTION
    )
    # Then each line says what happened there, the totals count them, and the subject too
    assert [line.action for line in summary.lines] == ["deleted", "kept (moved since)", "absent", "failed"]
    assert (summary.totals.deleted, summary.totals.kept, summary.totals.absent) == (1, 1, 1)
    assert summary.outcome == "PARTIAL"
    assert "4 destinations: 1 deleted, 1 kept, 1 absent, 1 failed" in summary.message
    assert "kept (moved since)" in summary.message
    # And the retry input is a delete of the same digest at the failed destination only
    retry = {
        "repository": "app",
        "tag": "release-2.4.1",
        "destinations": [{"account": "222222222222", "region": "ap-south-1"}],
        "action": "delete",
        "digest": digest,
    }
    assert json.dumps(retry) in summary.message
    assert "ecr-replicate start" not in summary.message


def test_success_notifies_only_when_configured_always() -> None:
    # Given all destinations succeeded
    results = [result("eu-west-1", "copied"), result("us-west-2", "present")]
    # When summarized with notifications on failure, then on always
    on_failure = summarize(results, repository="app", tag="release-1.2.0", notify_on="failure")
    always = summarize(results, repository="app", tag="release-1.2.0", notify_on="always")
    # Then only `always` notifies, and a success has no failure cause
    assert on_failure.outcome == "SUCCEEDED"
    assert on_failure.notify is False
    assert always.notify is True
    assert on_failure.failure_cause is None
    assert "FAILED" not in on_failure.message


def test_dry_run_is_visible_in_subject_and_body() -> None:
    # Given a dry run that found one destination to replicate and one already present
    results = [
        result("eu-west-1", "planned", planned_action="copy"),
        result("us-west-2", "present"),
        result("eu-central-1", "planned", planned_action="tag"),
    ]
    # When summarized
    summary = summarize(results, repository="app", tag="release-1.2.0", dry_run=True)
    # Then subject and body say it was a dry run and what a real run would do at each destination
    assert summary.subject.startswith("[dry run] ECR replication SUCCEEDED: app:release-1.2.0")
    assert summary.subject.endswith("(1 present, 2 planned)")
    assert "Nothing was copied" in summary.message
    assert [line.action for line in summary.lines] == ["would copy", "present", "would tag"]
    assert "would copy" in summary.message
    assert "would tag" in summary.message


def test_the_retry_hint_of_a_failed_dry_run_is_a_dry_run_too() -> None:
    # Given a dry run in which one destination failed
    results = [
        result("eu-west-1", "planned", planned_action="copy"),
        result("us-west-2", "failed", error="X"),
    ]
    # When summarized
    summary = summarize(results, repository="app", tag="release-1.2.0", dry_run=True, execution_arn=EXECUTION)
    # Then both ways to retry it keep it a dry run
    assert (
        '"destinations": [{"account": "222222222222", "region": "us-west-2"}], "dryRun": true}'
        in summary.message
    )
    assert "--destination 222222222222:us-west-2 --dry-run --wait" in summary.message


def test_subject_stays_under_100_ascii_characters_for_long_names() -> None:
    # Given a very long repository name and tag, with every status present
    repository = "team/" + "very-long-service-name-" * 8
    tag = "release-" + "9" * 100
    statuses = ["copied", "tagged", "present", "planned", "failed"]
    results = [
        result(f"r{i}", s, repository=repository, tag=tag, error="E" if s == "failed" else None)
        for i, s in enumerate(statuses)
    ]
    # When summarized
    summary = summarize(results, repository=repository, tag=tag, execution_arn=EXECUTION)
    # Then the subject is one ASCII line under 100 characters that still says the outcome and counts
    assert len(summary.subject) < 100
    assert summary.subject.isascii()
    assert "\n" not in summary.subject
    assert summary.subject.startswith("ECR replication PARTIAL: team/")
    assert summary.subject.endswith("99 (1 of 5 destinations failed)")
    assert "..." in summary.subject


def test_no_targets_is_skipped_with_the_reason() -> None:
    # Given no target at all
    summary = summarize(
        [], repository="app", tag="dev-1", skipped_reason="tag 'dev-1' matches none of 'release-*'"
    )
    # Then the outcome is SKIPPED and the body says why
    assert summary.outcome == "SKIPPED"
    assert summary.notify is False
    assert "Nothing replicated: tag 'dev-1' matches none of 'release-*'" in summary.message


def test_a_failed_build_cause_becomes_its_status_phase_message_and_log_link() -> None:
    # Given the cause Step Functions records for a failed startBuild.sync (the Build, as JSON)
    build = {
        "Id": "ecr-replication-copy:1234",
        "BuildStatus": "FAILED",
        "Phases": [
            {"PhaseType": "INSTALL", "PhaseStatus": "SUCCEEDED"},
            {
                "PhaseType": "BUILD",
                "PhaseStatus": "FAILED",
                "Contexts": [{"StatusCode": "COMMAND_EXECUTION_ERROR", "Message": "exit status 1"}],
            },
        ],
        "Logs": {"DeepLink": "https://console.aws.amazon.com/cloudwatch/home#logsV2:x"},
        "Environment": {"EnvironmentVariables": [{"Name": "X", "Value": "y" * 5000}]},
    }
    # When shortened
    text = short_cause(json.dumps(build))
    # Then it names the build, its status, the failing phase and the logs
    assert text == (
        "copy build ecr-replication-copy:1234 ended FAILED in phase BUILD: exit status 1; "
        "logs: https://console.aws.amazon.com/cloudwatch/home#logsV2:x"
    )


def test_long_plain_causes_are_cut() -> None:
    # Given a long non-JSON cause / When shortened / Then it is cut at the limit with an ellipsis
    text = short_cause("x" * 5000)
    assert text is not None
    assert len(text) == CAUSE_LIMIT
    assert text.endswith("...")
    assert short_cause(None) is None
    assert short_cause("[1, 2]") == "[1, 2]"


def test_console_url_and_state_machine_arn_come_from_the_execution_arn() -> None:
    # Given execution ARNs in the commercial and China partitions
    china = "arn:aws-cn:states:cn-north-1:111111111111:execution:sm:run"
    # Then the links and the state machine ARN follow
    assert console_url(EXECUTION) == (
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
        f"#/v2/executions/details/{EXECUTION}"
    )
    assert console_url(china).startswith("https://cn-north-1.console.amazonaws.cn/states/home")
    assert (
        state_machine_arn_of(EXECUTION)
        == "arn:aws:states:us-east-1:111111111111:stateMachine:ecr-replication"
    )
    with pytest.raises(ValueError, match="not a Step Functions execution ARN"):
        console_url("arn:aws:states:us-east-1:111111111111:stateMachine:sm")


def test_failure_cause_is_bounded_for_many_failed_targets() -> None:
    # Given 300 failed destinations with long causes
    results = [
        result(f"region-{i}", "failed", error="RegistryUnavailable", cause="z" * 2000) for i in range(300)
    ]
    # When summarized
    summary = summarize(results, repository="app", tag="release-1.2.0", execution_arn=EXECUTION)
    # Then the Fail state's cause fits the Step Functions limit (32768 characters)
    assert summary.outcome == "FAILED"
    assert summary.failure_cause is not None
    assert len(summary.failure_cause) <= 30_000
