"""Past the inline Map's limit the run fans out with the Distributed Map, end to end in the local runtime.

60 destinations (15 accounts x 4 Regions, above the inline limit of 40) share four registries, one per Region,
each destination with its own repository. The targets go to the fan-out bucket, each destination runs as a
child execution (Precheck -> Copy -> Record), the results come back from the bucket, the events go out through
the second Distributed Map, and the email stays one page. One Region refuses pushes and one destination's build
returns a result over Step Functions' 256 KiB (an error no Catch catches, so its child execution fails): both
are reported, every other destination is reached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import E2E, SOURCE, listen, received
from tests.e2e.test_broken_build_results import huge_result
from workflow.local.images import build_image
from workflow.local.places import fleet_config, regional_places
from workflow.local.runtime import LocalRuntime
from workflow.pipeline.announce import FAILED, REPLICATED
from workflow.pipeline.fanout import INLINE_LIMIT
from workflow.pipeline.summary import PAGE_LINES

pytestmark = [pytest.mark.e2e, pytest.mark.own_runtime]

REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1")
ACCOUNTS = [f"{500000000000 + index:012d}" for index in range(15)]
REFUSING = "ap-southeast-2"
# The largest state input or output of any history event, with room under Step Functions' 256 KiB.
STATE_LIMIT = 256 * 1024


def repository(account: str) -> str:
    return f"fleet-{account}/app"


@pytest.fixture(scope="module")
def fleet() -> Iterator[E2E]:
    with LocalRuntime(
        fleet_config(SOURCE, ACCOUNTS, REGIONS, repository="fleet-{account}/{repository}", max_concurrency=8),
        places=regional_places(SOURCE, ACCOUNTS, REGIONS),
    ) as runtime:
        yield E2E(runtime)


def largest_state(events: list[dict[str, Any]]) -> int:
    """The largest input or output in a history, in bytes."""
    sizes = [0]
    for event in events:
        for details in event.values():
            if isinstance(details, dict):
                for key in ("input", "output"):
                    if isinstance(details.get(key), str):
                        sizes.append(len(details[key].encode()))
    return max(sizes)


def test_sixty_destinations_fan_out_through_the_distributed_map_and_every_one_is_reached_or_reported(
    fleet: E2E,
) -> None:
    runtime = fleet.runtime
    assert len(ACCOUNTS) * len(REGIONS) > INLINE_LIMIT
    # Given one Region whose registry refuses pushes, one destination whose build result is over 256 KiB,
    # and a listener for the replication events
    runtime.refuse_pushes("000000000000", REFUSING, True)
    oversized = f"{runtime.registries[f'region-{REGIONS[0]}'].host}/{repository(ACCOUNTS[0])}:"
    runtime.codebuild.export_instead(oversized, huge_result("oversized"))
    queue = listen(fleet, "fleet-events", [REPLICATED, FAILED])
    # When a release is pushed and its event starts the run
    tag = fleet.new_tag()
    image = fleet.push(tag, build_image(f"fleet {tag}", ("linux/amd64",), layer_sizes=(4 * 1024,)))
    [execution] = fleet.deliver()
    # Then the parent execution fanned out with the Distributed Map: the Map Run's events, no iteration's
    entered = execution.states_entered()
    assert "ReplicateAtScale" in entered
    assert "Replicate" not in entered
    assert "Precheck" not in entered
    assert "Copy" not in entered
    types = [event["type"] for event in execution.events]
    assert types.count("MapRunStarted") == 2  # the copies, and the events
    assert len(execution.events) < 100, len(execution.events)
    # And no state carried more than Step Functions' 256 KiB (the largest is far below it)
    assert largest_state(execution.events) < STATE_LIMIT / 4, largest_state(execution.events)
    # And every destination is reached or reported: 44 copied (digest-exact), 15 refused, 1 oversized
    assert execution.status == "FAILED"
    assert execution.error == "ReplicationFailed"
    summary = execution.state_outputs("Summarize")[-1]["summary"]
    totals = summary["totals"]
    assert (totals["targets"], totals["copied"], totals["failed"]) == (60, 44, 16)
    for account in ACCOUNTS:
        for region in REGIONS:
            digest = runtime.fronts[f"region-{region}"].current_digest(repository(account), tag)
            broken = region == REFUSING or (account, region) == (ACCOUNTS[0], REGIONS[0])
            assert digest == (None if broken else image.digest), (account, region)
    failed = {f"{line['account']}/{line['region']}": line["error"] for line in summary["lines"]}
    assert failed[f"{ACCOUNTS[0]}/{REGIONS[0]}"] == "States.DataLimitExceeded"
    assert all(failed[f"{account}/{REFUSING}"] for account in ACCOUNTS)
    assert len(failed) == 16
    # And the email is one page that says where every result is and how to retry exactly the failed ones
    [email] = runtime.notifications()
    page = email["message"].splitlines()
    assert len(page) <= PAGE_LINES
    assert "FAILED (16):" in email["message"]
    assert "s3://ecr-replication-fanout-local/runs/" in email["message"]
    retry_key = f"runs/{execution.arn.rsplit(':', 1)[1]}/retry.json"
    retry = json.loads(
        runtime.client("s3").get_object(Bucket="ecr-replication-fanout-local", Key=retry_key)["Body"].read()
    )
    assert sorted((d["account"], d["region"]) for d in retry["destinations"]) == sorted(
        [(account, REFUSING) for account in ACCOUNTS] + [(ACCOUNTS[0], REGIONS[0])]
    )
    # And one replication event per destination went out, through the events' Distributed Map
    events = received(fleet, queue)
    assert len(events) == 60
    assert sum(1 for event in events if event["detail-type"] == FAILED) == 16
