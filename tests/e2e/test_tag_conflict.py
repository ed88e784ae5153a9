"""No silent overwrite, end to end: a rule with `on_tag_conflict: refuse` leaves a destination tag that points
at another digest alone, and that destination fails with DestinationTagConflict."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, EU, US, statuses
from workflow.local.images import build_image, push_image
from workflow.pipeline.runbook import RUNBOOK_URL

pytestmark = pytest.mark.e2e


def test_a_rule_that_refuses_replacement_ends_with_destination_tag_conflict(e2e: E2E) -> None:
    # Given eu-west-1 already holding guarded:<tag> as image A, and the source pushing another image B as <tag>
    tag = e2e.new_tag()
    earlier = build_image(f"e2e earlier {tag}", ("linux/amd64",), layer_sizes=(4 * 1024,))
    push_image(e2e.runtime.registry_of(EU["account"], EU["region"]).url, "guarded", tag, earlier)
    image = e2e.push(tag, repository="guarded")
    builds = e2e.builds()
    # When B's push event goes through EventBridge
    [execution] = e2e.run_event(tag, image, repository="guarded")
    # Then the run fails at eu-west-1 only, with DestinationTagConflict naming both digests, and no build ran there
    assert execution.status == "FAILED"
    assert execution.error == "ReplicationFailed"
    assert statuses(execution) == {"222222222222/eu-west-1": "failed", "333333333333/us-west-2": "copied"}
    summary = execution.state_outputs("Summarize")[-1]["summary"]
    (failed,) = [line for line in summary["lines"] if line["action"] == "failed"]
    assert failed["error"] == "DestinationTagConflict"
    assert earlier.digest in failed["cause"]
    assert image.digest in failed["cause"]
    assert failed["runbook"] == f"{RUNBOOK_URL}#destinationtagconflict"
    assert e2e.builds() == builds + 1  # us-west-2's copy only
    # and the failed run sent one email, saying why, when, and where the runbook section is (absolute)
    (email,) = e2e.runtime.notifications()
    assert email["subject"].startswith("ECR replication PARTIAL: guarded:")
    assert "error: DestinationTagConflict" in email["message"]
    assert f"runbook: {RUNBOOK_URL}#destinationtagconflict" in email["message"]
    assert "Started:  " in email["message"]
    assert "Finished: " in email["message"]
    # and eu-west-1 keeps image A, us-west-2 has B
    assert e2e.digest_at(EU, tag, repository="guarded") == earlier.digest
    assert e2e.digest_at(US, tag, repository="guarded") == image.digest
