"""Full workflow paths on the local runtime: the real statemachine.asl.json on moto's interpreter,
the real handlers in-process, the buildspec's `ecr-replicate copy` against loopback registries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import AP, E2E, EU, US, statuses
from workflow.local.images import build_image
from workflow.registry.media import OCI_INDEX

pytestmark = pytest.mark.e2e


def test_a_push_outside_the_event_pattern_starts_no_execution(e2e: E2E) -> None:
    # Given a dev tag pushed to the source
    tag = e2e.new_tag("dev")
    image = e2e.push(tag)
    # When its push event goes through EventBridge
    executions = e2e.run_event(tag, image)
    # Then the rule does not match, so nothing runs and nothing is copied
    assert executions == []
    assert e2e.digest_at(EU, tag) is None


def test_an_excluded_tag_is_skipped_without_a_copy(e2e: E2E) -> None:
    # Given a release candidate: the pattern's prefix matches, the rule's exclude does not
    tag = e2e.new_tag("release-2.0.0-rc")
    image = e2e.push(tag)
    builds = e2e.builds()
    # When its push event goes through EventBridge
    [execution] = e2e.run_event(tag, image)
    # Then the execution succeeds as SKIPPED, says why, and copies nothing
    assert execution.status == "SUCCEEDED"
    assert execution.output["outcome"] == "SKIPPED"
    assert "excluded" in execution.output["skipped_reason"]
    assert "Replicate" not in execution.states_entered()
    assert e2e.builds() == builds
    assert e2e.digest_at(EU, tag) is None
    assert e2e.digest_at(US, tag) is None


def test_all_targets_succeed_with_identical_digests(e2e: E2E) -> None:
    # Given a two-platform release image at the source
    tag = e2e.new_tag()
    image = e2e.push(tag)
    # When its push event goes through EventBridge
    [execution] = e2e.run_event(tag, image)
    # Then both destinations have it under the same index digest, and no email is sent on success
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["outcome"] == "SUCCEEDED"
    assert statuses(execution) == {"222222222222/eu-west-1": "copied", "333333333333/us-west-2": "copied"}
    assert e2e.digest_at(EU, tag) == image.digest
    assert e2e.digest_at(US, tag) == image.digest
    assert e2e.runtime.notifications() == []


def test_an_image_already_present_is_not_copied_again(e2e: E2E) -> None:
    # Given a release already replicated to both destinations
    tag = e2e.new_tag()
    image = e2e.push(tag)
    [first] = e2e.run_event(tag, image)
    assert first.status == "SUCCEEDED", first.cause
    builds = e2e.builds()
    # When the same push event arrives again
    [second] = e2e.resend_event(tag, image)
    # Then every destination is "present" and no CodeBuild job runs
    assert second.status == "SUCCEEDED", second.cause
    assert statuses(second) == {"222222222222/eu-west-1": "present", "333333333333/us-west-2": "present"}
    assert "Copy" not in second.states_entered()
    assert e2e.builds() == builds


def test_a_new_tag_on_a_replicated_digest_is_only_retagged(e2e: E2E) -> None:
    # Given an image replicated under one tag
    first_tag, second_tag = e2e.new_tag(), e2e.new_tag()
    image = e2e.push(first_tag)
    [first] = e2e.run_event(first_tag, image)
    assert first.status == "SUCCEEDED", first.cause
    builds = e2e.builds()
    # When the same image is pushed under a second tag
    e2e.push(second_tag, image)
    [second] = e2e.run_event(second_tag, image)
    # Then the destinations get the tag without a build, pointing at the same digest
    assert second.status == "SUCCEEDED", second.cause
    assert statuses(second) == {"222222222222/eu-west-1": "tagged", "333333333333/us-west-2": "tagged"}
    assert e2e.builds() == builds
    assert e2e.digest_at(EU, second_tag) == image.digest
    assert e2e.digest_at(US, second_tag) == image.digest


def test_a_late_event_for_an_earlier_push_never_rolls_a_destination_back(e2e: E2E) -> None:
    # Given a tag pushed as A, then again as B, and B already replicated
    tag = e2e.new_tag()
    first = e2e.push(tag)
    assert [event["detail"]["image-digest"] for event in e2e.runtime.drop_events()] == [first.digest]
    second = e2e.push(tag)
    [current] = e2e.run_event(tag, second)
    assert current.status == "SUCCEEDED", current.cause
    builds = e2e.builds()
    # When A's push event, held back above, arrives late (EventBridge retries for hours)
    [late] = e2e.resend_event(tag, first)
    # Then the destinations keep B, which they already have, and no build runs
    assert late.status == "SUCCEEDED", late.cause
    assert statuses(late) == {"222222222222/eu-west-1": "present", "333333333333/us-west-2": "present"}
    assert e2e.builds() == builds
    assert e2e.digest_at(EU, tag) == e2e.digest_at(US, tag) == second.digest != first.digest


def test_the_newest_push_wins_when_the_older_push_finishes_last(e2e: E2E) -> None:
    # Given a tag pushed as A, whose copy to eu-west-1 is held at the start of its build until the tag is
    # pushed again as B and B's own run has replicated B (so A's execution is forced to finish last)
    tag = e2e.new_tag()
    first = e2e.push(tag)
    newer: dict[str, Any] = {}

    def push_again_and_replicate() -> None:
        newer["image"] = e2e.push(tag)
        newer["run"] = e2e.run_manual({"repository": "app", "tag": tag, "destinations": [EU]})

    eu = e2e.runtime.registry_of(EU["account"], EU["region"]).host
    e2e.runtime.codebuild.before_build(f"{eu}/app:{tag}", push_again_and_replicate)
    # When A's run ends, after B's
    older = e2e.run_manual({"repository": "app", "tag": tag, "destinations": [EU]})
    # Then B's run copied B; A's copied A by digest but left the tag to B (superseded): eu-west-1 keeps B
    assert newer["run"].status == older.status == "SUCCEEDED", (newer["run"].cause, older.cause)
    assert statuses(newer["run"]) == {"222222222222/eu-west-1": "copied"}
    assert statuses(older) == {"222222222222/eu-west-1": "superseded"}
    assert e2e.digest_at(EU, tag) == newer["image"].digest != first.digest
    [line] = older.state_outputs("Summarize")[-1]["summary"]["lines"]
    assert line["digest"] == first.digest
    found = httpx.head(f"http://{eu}/v2/app/manifests/{first.digest}", headers={"Accept": OCI_INDEX})
    assert found.status_code == 200


def test_a_throttled_codebuild_start_is_retried(e2e: E2E) -> None:
    # Given CodeBuild refuses the next StartBuild with a throttling error
    tag = e2e.new_tag()
    image = e2e.push(tag)
    e2e.runtime.codebuild.fail_next_start_builds("CodeBuild.AccountLimitExceededException")
    builds = e2e.builds()
    # When the release is replicated
    [execution] = e2e.run_event(tag, image)
    # Then the Copy state retries and both destinations are copied
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.errors() == ["CodeBuild.AccountLimitExceededException"]
    assert statuses(execution) == {"222222222222/eu-west-1": "copied", "333333333333/us-west-2": "copied"}
    assert e2e.builds() == builds + 2
    assert e2e.digest_at(EU, tag) == image.digest


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"repository": "app"}, "tag: required field is missing"),
        ({"repository": "app", "tag": "release 1"}, "tag:"),
        ({"repository": "app", "tag": "release-1", "dryRun": "yes"}, "dryRun"),
        ("app:release-1", "object"),
        (["app", "release-1"], "object"),
    ],
    ids=["no-tag", "bad-tag", "bad-dry-run", "a-string", "a-list"],
)
def test_bad_manual_input_fails_the_plan_with_a_named_error(e2e: E2E, payload: object, problem: str) -> None:
    # Given a malformed manual input
    builds = e2e.builds()
    # When it is started from the console
    execution = e2e.run_manual(payload)
    # Then the execution fails at Plan with InvalidRequest saying what is wrong, and nothing is copied
    assert execution.status == "FAILED"
    assert execution.error == "InvalidRequest"
    assert problem in (execution.cause or "")
    assert "Replicate" not in execution.states_entered()
    assert e2e.builds() == builds


def test_a_manual_run_can_narrow_to_one_destination(e2e: E2E) -> None:
    # Given a release at the source, not pushed through EventBridge
    tag = e2e.new_tag()
    image = e2e.push(tag)
    # When an operator starts a run for eu-west-1 only
    execution = e2e.run_manual({"repository": "app", "tag": tag, "destinations": [EU]})
    # Then only eu-west-1 receives it
    assert execution.status == "SUCCEEDED", execution.cause
    assert statuses(execution) == {"222222222222/eu-west-1": "copied"}
    assert e2e.digest_at(EU, tag) == image.digest
    assert e2e.digest_at(US, tag) is None


def test_a_destination_outside_the_config_is_rejected(e2e: E2E) -> None:
    # Given a release at the source
    tag = e2e.new_tag()
    e2e.push(tag)
    builds = e2e.builds()
    # When a manual run names a destination the config does not have
    execution = e2e.run_manual({"repository": "app", "tag": tag, "destinations": [AP]})
    # Then the execution fails with DestinationNotAllowed naming it, and nothing is copied
    assert execution.status == "FAILED"
    assert execution.error == "DestinationNotAllowed"
    assert "444444444444/ap-southeast-2" in (execution.cause or "")
    assert e2e.builds() == builds


@pytest.mark.own_runtime
@pytest.mark.parametrize("broken", [0, 2], ids=["first-destination-read-only", "last-destination-read-only"])
def test_one_failing_destination_of_three_gives_partial(
    runtime_with_readonly: Callable[[int], E2E], broken: int
) -> None:
    # Given three destinations, one of them a registry that refuses pushes
    e2e = runtime_with_readonly(broken)
    places = [EU, US, AP]
    tag = e2e.new_tag()
    image = e2e.push(tag, build_image("partial", ("linux/amd64", "linux/arm64"), layer_sizes=(4096,)))
    # When the release is replicated
    [execution] = e2e.run_event(tag, image)
    # Then the other two are copied, the broken one is failed, the execution FAILED as PARTIAL
    assert execution.status == "FAILED"
    assert execution.error == "ReplicationFailed"
    expected = {f"{p['account']}/{p['region']}": "copied" for p in places}
    expected[f"{places[broken]['account']}/{places[broken]['region']}"] = "failed"
    assert statuses(execution) == expected
    for index, place in enumerate(places):
        assert e2e.digest_at(place, tag) == (None if index == broken else image.digest)
    # And one summary was published to SNS, saying PARTIAL and naming the failed destination
    [notification] = e2e.runtime.notifications()
    assert "PARTIAL" in notification["subject"]
    assert f"{places[broken]['account']}/{places[broken]['region']}" in notification["message"]
    # And the email carries the copier's own error (the registry refusing the upload), not just "build failed"
    assert "RegistryProtocolError" in notification["message"]
