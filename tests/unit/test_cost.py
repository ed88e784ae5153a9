"""The run's estimated cost: from its own records, at the list prices the README cites."""

from __future__ import annotations

import pytest

from workflow.models.payloads import TargetResult
from workflow.pipeline.cost import GIB, PARENT_TRANSITIONS, Prices, estimate
from workflow.pipeline.record import build_seconds
from workflow.pipeline.summary import RunDetails, summarize

DIGEST = "sha256:" + "d" * 64
SOURCE_REGION = "us-east-1"


def record(region: str, status: str, **fields: object) -> TargetResult:
    base: dict[str, object] = {"account": "222222222222", "region": region, "repository": "app", "tag": "v1"}
    if status != "failed":
        base["digest"] = DIGEST
    return TargetResult.model_validate({**base, "status": status, **fields})


def twelve() -> list[TargetResult]:
    """12 destinations in 3 Regions (one of them the source's): 10 copied by a 90 s build, 500 MiB each; 2 present."""
    regions = ("us-east-1", "eu-west-1", "ap-southeast-2")
    copied = [
        record(
            regions[i % 3],
            "copied",
            bytes_copied=500 * 1024**2,
            build_seconds=90.0,
            seconds=80.0,
            build_arn="b",
        )
        for i in range(10)
    ]
    return [*copied, record("eu-west-1", "present"), record("us-east-1", "present")]


def test_the_estimate_counts_transitions_calls_builds_and_bytes_between_regions() -> None:
    # Given 12 destinations: 10 copies (4 states each, 2 functions), 2 already present (3 states, 1 function)
    results = twelve()
    # When estimated at the list prices
    cost = estimate(results, source_region=SOURCE_REGION)
    prices = Prices()
    # Then each count comes from the records
    assert cost.transitions == PARENT_TRANSITIONS + 10 * 4 + 2 * 3
    assert cost.lambda_requests == 2 + 10 * 2 + 2 * 1
    assert (cost.builds, cost.build_minutes) == (10, 20)  # 90 s bills 2 minutes each
    copies_abroad = sum(1 for i in range(10) if i % 3 != 0)
    assert cost.inter_region_bytes == copies_abroad * 500 * 1024**2
    # And each price applies to its count
    assert cost.step_functions == pytest.approx(cost.transitions * 0.025 / 1000)
    assert cost.codebuild == pytest.approx(20 * 0.0024)
    assert cost.transfer == pytest.approx(copies_abroad * 500 / 1024 * 0.02)
    assert cost.total == pytest.approx(
        cost.step_functions + cost.lambda_ + cost.codebuild + cost.transfer + cost.s3
    )
    assert prices.inter_region_gb == 0.02
    assert cost.s3 == 0.0  # an inline run writes nothing to the fan-out bucket


def test_bytes_copied_inside_the_destinations_region_are_not_billed_as_transfer() -> None:
    # Given a copy whose bytes all came from a seed in its own Region / Then no transfer between Regions is counted
    relayed = record(
        "eu-west-1", "copied", bytes_copied=GIB, bytes_in_region=GIB, build_arn="b", build_seconds=30.0
    )
    assert estimate([relayed], source_region=SOURCE_REGION).inter_region_bytes == 0


def test_a_distributed_run_counts_its_s3_requests() -> None:
    cost = estimate(twelve(), source_region=SOURCE_REGION, distributed=True)
    assert cost.s3 > 0


def test_the_email_carries_the_runs_estimate_per_run_and_per_destination() -> None:
    results = twelve()
    line = estimate(results, source_region=SOURCE_REGION).line(len(results))
    summary = summarize(results, repository="app", tag="v1", details=RunDetails(cost_line=line))
    assert "Estimated cost of this run: $" in summary.message
    assert "per destination" in line
    assert "transitions" in line
    assert "GiB" in line


@pytest.mark.parametrize(
    ("build", "seconds"),
    [
        (
            {"StartTime": 1_700_000_000.0, "EndTime": 1_700_000_095.5},
            95.5,
        ),  # epoch seconds (the local runtime)
        ({"StartTime": 1_700_000_000_000, "EndTime": 1_700_000_042_000}, 42.0),  # epoch milliseconds
        ({"StartTime": 1_700_000_000.0}, 0.0),  # no end
        ({"StartTime": 1_700_000_000.0, "EndTime": 1_600_000_000.0}, 0.0),  # ends before it starts
        ({"StartTime": "yesterday", "EndTime": 1.0}, 0.0),
    ],
)
def test_a_builds_duration_comes_from_its_start_and_end(build: dict[str, object], seconds: float) -> None:
    assert build_seconds(build) == seconds
