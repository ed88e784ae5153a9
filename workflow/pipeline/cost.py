"""What one run cost, estimated from its own records: state transitions, Lambda, copy builds, data between Regions, S3.

The prices are list prices of US East (N. Virginia), read on 2026-12-06 (README, "What it costs", names each page):
- Step Functions Standard: $0.025 per 1,000 state transitions, retries included (aws.amazon.com/step-functions/pricing/);
- Lambda on arm64 (the functions' architecture): $0.0000133334 per GB-second, $0.20 per million requests
  (aws.amazon.com/lambda/pricing/);
- CodeBuild on Lambda compute, `lambda.x86-64.2GB` (the copy project's LAMBDA_2GB): $0.0024 per build minute
  (aws.amazon.com/codebuild/pricing/; whole minutes are counted here, an upper bound);
- data sent from the source Region to another Region: $0.02 per GB (aws.amazon.com/ec2/pricing/on-demand/, "Data
  Transfer"); what a copier reads and writes inside one Region is free;
- S3 Standard requests: $0.005 per 1,000 PUT, $0.0004 per 1,000 GET (aws.amazon.com/s3/pricing/).

What the records count: the states each destination went through (4 for a copy: Precheck, Copy?, Copy, Record; 3 when
no copy was needed; 2 when the Precheck failed), its copy build's duration (from the Build), the bytes it copied and
whether the copier sent them across Regions (or a relay moved them inside the destination's Region, and for how long).
What they cannot count is estimated and said so: retries (each one more
transition, and a Lambda call), the Lambda functions' durations (typical ones below), the Gate's looks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from workflow.models.payloads import TargetResult

GIB = 1024**3  # AWS bills data and storage in GB of 2^30 bytes


@dataclass(frozen=True)
class Prices:
    """List prices (USD) of US East (N. Virginia), read 2026-12-06."""

    transition: float = 0.025 / 1000
    lambda_gb_second: float = 0.0000133334
    lambda_request: float = 0.20 / 1_000_000
    build_minute: float = 0.0024
    inter_region_gb: float = 0.02
    s3_put: float = 0.005 / 1000
    s3_get: float = 0.0004 / 1000


# (memory GB, typical seconds) of each function (infra/constructs/functions.py sets the memory).
PRECHECK = (0.5, 1.0)
RELAY_GB = 2.0  # the relay function's memory (infra/stacks/relay_stack.py); its seconds are in the records
SMALL_FUNCTION = (0.25, 0.2)  # Plan, Record, Summarize
# The parent execution's own states on a run's usual path (Plan, Any?, Gate?, FanOut?, the Map, Summarize, Announce?,
# Announce, Notify?, Notify, Outcome?, the end).
PARENT_TRANSITIONS = 12
# A distributed run's S3 requests: targets, results (manifest and files), events and retry input written; the same
# read back (ItemReader, Summarize, the events' ItemReader).
DISTRIBUTED_PUTS = 7
DISTRIBUTED_GETS = 7


@dataclass(frozen=True)
class CostEstimate:
    """One run's estimated cost, in USD, by service, with the counts it comes from."""

    transitions: int
    lambda_requests: int
    builds: int
    build_minutes: int
    inter_region_bytes: int
    step_functions: float
    lambda_: float
    codebuild: float
    transfer: float
    s3: float

    @property
    def total(self) -> float:
        """The run's estimated cost."""
        return self.step_functions + self.lambda_ + self.codebuild + self.transfer + self.s3

    def line(self, destinations: int) -> str:
        """One line for the summary email."""
        each = f", ${self.total / destinations:.5f} per destination" if destinations else ""
        return (
            f"Estimated cost of this run: ${self.total:.4f}{each} (Step Functions {self.transitions} transitions "
            f"${self.step_functions:.4f}; Lambda {self.lambda_requests} calls ${self.lambda_:.4f}; CodeBuild "
            f"{self.builds} builds, {self.build_minutes} min ${self.codebuild:.4f}; between Regions "
            f"{self.inter_region_bytes / GIB:.2f} GiB ${self.transfer:.4f}; S3 ${self.s3:.5f}). List prices of "
            'us-east-1, retries not counted: README, "What it costs".'
        )


def _transitions(result: TargetResult) -> int:
    if result.status == "blocked":
        return 0
    if result.build_arn or result.status in ("copied", "superseded"):
        return 4
    if result.status == "failed":
        return 2
    return 3


def _lambda_calls(result: TargetResult) -> tuple[int, float]:
    """(calls, GB-seconds) of one destination's Precheck and Record."""
    if result.status == "blocked":
        return 0, 0.0
    precheck = PRECHECK[0] * PRECHECK[1]
    if _transitions(result) == 3:
        return 1, precheck
    return 2, precheck + SMALL_FUNCTION[0] * SMALL_FUNCTION[1]


def estimate(
    results: Sequence[TargetResult],
    *,
    source_region: str | None,
    distributed: bool = False,
    prices: Prices | None = None,
) -> CostEstimate:
    """The cost of the run whose records are `results`."""
    prices = prices or Prices()
    transitions = PARENT_TRANSITIONS + sum(_transitions(r) for r in results)
    calls = [_lambda_calls(r) for r in results]
    relayed = [r.relay_seconds for r in results if r.bytes_in_region or r.relay_seconds]
    requests = (
        2 + sum(count for count, _ in calls) + len(relayed)
    )  # Plan, Summarize, each destination's, relays
    gb_seconds = 2 * SMALL_FUNCTION[0] * SMALL_FUNCTION[1] + sum(seconds for _, seconds in calls)
    gb_seconds += RELAY_GB * sum(relayed)
    built = [r for r in results if r.build_arn or r.status in ("copied", "superseded")]
    minutes = sum(math.ceil(max(r.build_seconds, r.seconds, 1.0) / 60) for r in built)
    inter_region = sum(r.bytes_copied - r.bytes_in_region for r in results if r.region != source_region)
    puts, gets = (DISTRIBUTED_PUTS, DISTRIBUTED_GETS) if distributed else (0, 0)
    return CostEstimate(
        transitions=transitions,
        lambda_requests=requests,
        builds=len(built),
        build_minutes=minutes,
        inter_region_bytes=inter_region,
        step_functions=transitions * prices.transition,
        lambda_=requests * prices.lambda_request + gb_seconds * prices.lambda_gb_second,
        codebuild=minutes * prices.build_minute,
        transfer=inter_region / GIB * prices.inter_region_gb,
        s3=puts * prices.s3_put + gets * prices.s3_get,
    )
