"""Deletions that follow (rules with propagate_deletes) on the local runtime: one execution per case.

Each case seeds the source and the destinations directly (as a replication would have), untags the
source and sends ECR's DELETE event through EventBridge with the pattern CDK synthesizes.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, EU, US, statuses
from workflow.local.images import Image, build_image, push_image

pytestmark = pytest.mark.e2e


def image(label: str) -> Image:
    """A small one-platform image of its own."""
    return build_image(label, ("linux/amd64",), layer_sizes=(1024,))


def test_a_deleted_tag_is_removed_at_every_destination_and_only_the_tag(e2e: E2E) -> None:
    # Given web:<tag> at the source and both destinations, and at EU another tag on the same image
    tag, other = e2e.new_tag(), e2e.new_tag("pinned")
    withdrawn = image(f"withdrawn {tag}")
    e2e.seed(tag, withdrawn, [EU, US])
    e2e.seed(other, withdrawn, [EU])
    # When the tag is deleted at the source
    (execution,) = e2e.run_delete_event(tag, withdrawn.digest)
    # Then the tag is gone from both destinations, reported "deleted", with no copy build
    assert execution.status == "SUCCEEDED", execution.errors()
    assert set(statuses(execution).values()) == {"deleted"}
    assert e2e.digest_at(EU, tag, "web") is None
    assert e2e.digest_at(US, tag, "web") is None
    # And the image stays at EU under its other tag
    assert e2e.digest_at(EU, other, "web") == withdrawn.digest


def test_a_destination_tag_moved_since_is_kept(e2e: E2E) -> None:
    # Given web:<tag> replicated to both destinations, then moved at US to another image
    tag = e2e.new_tag()
    withdrawn, newer = image(f"withdrawn {tag}"), image(f"newer {tag}")
    e2e.seed(tag, withdrawn, [EU, US])
    push_image(e2e.runtime.registry_of(US["account"], US["region"]).url, "web", tag, newer)
    # When the source tag is deleted (it pointed at the first image)
    (execution,) = e2e.run_delete_event(tag, withdrawn.digest)
    # Then EU's tag is deleted and US's is left alone, reported as moved since
    assert execution.status == "SUCCEEDED", execution.errors()
    assert statuses(execution) == {
        f"{EU['account']}/{EU['region']}": "deleted",
        f"{US['account']}/{US['region']}": "kept (moved since)",
    }
    assert e2e.digest_at(EU, tag, "web") is None
    assert e2e.digest_at(US, tag, "web") == newer.digest


def test_a_rule_without_opt_in_ignores_deletes(e2e: E2E) -> None:
    # Given app:<tag> (rule "releases", no propagate_deletes) at the source and at EU
    tag = e2e.new_tag()
    kept = image(f"kept {tag}")
    e2e.seed(tag, kept, [EU], repository="app")
    # When the tag is deleted at the source
    executions = e2e.run_delete_event(tag, kept.digest, repository="app")
    # Then the event pattern does not match a delete for that rule: nothing runs, EU keeps the tag
    assert executions == []
    assert e2e.digest_at(EU, tag, "app") == kept.digest


def test_a_delete_of_a_tag_no_rule_accepts_changes_nothing(e2e: E2E) -> None:
    # Given web:<release candidate>, which the pattern's prefix matches and the rule's exclude rejects
    tag = e2e.new_tag("release-3.0.0-rc")
    candidate = image(f"rc {tag}")
    e2e.seed(tag, candidate, [EU])
    # When the tag is deleted at the source
    (execution,) = e2e.run_delete_event(tag, candidate.digest)
    # Then the execution plans nothing, says why, and EU keeps the tag
    assert execution.status == "SUCCEEDED"
    assert execution.states_entered()[-1] == "Skipped"
    (plan,) = execution.state_outputs("Plan")
    assert "excluded" in plan["plan"]["skipped_reason"]
    assert e2e.digest_at(EU, tag, "web") == candidate.digest
