"""One copy across Regions per Region (regional_seeds), end to end in the local runtime.

Three destination accounts in eu-west-1 and one in us-west-2: eu-west-1's first destination is its seed (copied from
the source), the other two are copied from it by eu-west-1's relay function; us-west-2 has one destination, copied
from the source. With the relay gone, the seeded destinations fall back to the source.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import E2E, SOURCE, statuses
from workflow.local.images import build_image
from workflow.local.runtime import Execution, LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.own_runtime]

EU_ACCOUNTS = ["710000000001", "710000000002", "710000000003"]
US = {"account": "720000000001", "region": "us-west-2"}


def seeded_config() -> dict[str, Any]:
    destinations = [{"account": a, "regions": ["eu-west-1"]} for a in EU_ACCOUNTS]
    destinations.append({"account": US["account"], "regions": [US["region"]]})
    return {
        "source": SOURCE,
        "rules": [
            {
                "name": "releases",
                "repositories": ["app"],
                "tags": {"include": ["release-*"]},
                "destinations": destinations,
            }
        ],
        "notifications": {"emails": ["platform-team@example.com"], "on": "always"},
        "max_concurrency": 4,
        "regional_seeds": True,
    }


@pytest.fixture(scope="module")
def seeded() -> Iterator[E2E]:
    with LocalRuntime(seeded_config()) as runtime:
        yield E2E(runtime)


def records(execution: Execution) -> dict[str, dict[str, Any]]:
    """account -> the destination's record, from the Map's output."""
    summarize = [
        e
        for e in execution.events
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "Summarize"
    ]
    import json

    plan = json.loads(summarize[-1]["stateEnteredEventDetails"]["input"])["plan"]
    return {r["account"]: r for r in plan["targets"]}


def push(e2e: E2E) -> tuple[str, Any, Execution]:
    tag = e2e.new_tag()
    image = e2e.push(
        tag, build_image(f"seeds {tag}", ("linux/amd64", "linux/arm64"), layer_sizes=(64 * 1024, 16 * 1024))
    )
    [execution] = e2e.deliver()
    return tag, image, execution


def test_a_regions_first_destination_seeds_the_others_inside_the_region(seeded: E2E) -> None:
    # When a release is pushed to three destinations in eu-west-1 and one in us-west-2
    tag, image, execution = push(seeded)
    # Then every destination holds the image, digest for digest
    assert execution.status == "SUCCEEDED", execution.cause
    assert set(statuses(execution).values()) == {"copied"}
    for account in [*EU_ACCOUNTS, US["account"]]:
        region = US["region"] if account == US["account"] else "eu-west-1"
        assert seeded.runtime.fronts[f"{account}-{region}"].current_digest("app", tag) == image.digest
    # And in eu-west-1 only the seed's bytes came from the source: the relay moved the others' inside the Region
    by_account = records(execution)
    seed, *others = EU_ACCOUNTS
    assert by_account[seed]["bytes_copied"] > 0
    assert by_account[seed]["bytes_in_region"] == 0
    for account in others:
        assert by_account[account]["bytes_in_region"] == by_account[account]["bytes_copied"] > 0
    # And a Region with one destination has no seed: copied from the source
    assert by_account[US["account"]]["bytes_in_region"] == 0
    # And the email's cost line counts only the bytes sent from the source's Region
    [email] = seeded.runtime.notifications()
    sent = by_account[seed]["bytes_copied"] + by_account[US["account"]]["bytes_copied"]
    assert f"between Regions {sent / 1024**3:.2f} GiB" in email["message"]


def test_without_the_relay_the_seeded_destinations_copy_from_the_source(seeded: E2E) -> None:
    # Given eu-west-1's relay function gone
    seeded.runtime.break_relay("eu-west-1")
    # When a release is pushed
    tag, image, execution = push(seeded)
    # Then every destination still holds it, each copied from the source, and the builds said why
    assert execution.status == "SUCCEEDED", execution.cause
    by_account = records(execution)
    assert {by_account[a]["bytes_in_region"] for a in EU_ACCOUNTS} == {0}
    for account in EU_ACCOUNTS:
        assert seeded.runtime.fronts[f"{account}-eu-west-1"].current_digest("app", tag) == image.digest
    fell_back = [
        b
        for b in seeded.runtime.codebuild.builds
        if "the relay" in b.log and "copying from the source" in b.log
    ]
    assert len(fell_back) == 2
