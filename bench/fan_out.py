"""A fleet push end to end in the local runtime: 1,000 destinations (or `--destinations N`) through the Distributed Map.

The destinations are accounts x Regions (four Regions), all the accounts of a Region sharing that Region's one
registry, each destination with a repository of its own (`fleet-<account>/app`), so every one is a copy. One
Region refuses pushes (`--refuse`, default ap-southeast-2): its destinations must be reported failed, by name.
The run checks, and exits 1 when any check fails:
- every destination is reached (its repository holds the image's digest) or reported failed with an error name,
  and the summary's counts are those;
- the email is one page (at most PAGE_LINES lines);
- the parent execution's history stays bounded (it holds the Map Runs' events, not one per destination) and far
  inside the 25,000-event quota, and no state input or output comes near 256 KiB.
It prints the run's duration, the history's size, the largest state and the email, and measures how many events one
child execution has (the same Precheck -> Copy -> Record, run inline on a small fleet and counted per iteration).

Run: `.venv/bin/python bench/fan_out.py [--destinations 1000] [--concurrency 40]`.
Validation's bound on destinations per image is raised for the run
(workflow.models.config_checks.MAX_DESTINATIONS).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow.local.images import build_image
from workflow.local.places import fleet_config, regional_places
from workflow.local.runtime import Execution, LocalRuntime
from workflow.pipeline.summary import PAGE_LINES

SOURCE = {"account": "111111111111", "region": "us-east-1"}
REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1")
HISTORY_QUOTA = 25_000  # events in one execution's history ("Step Functions service quotas")
STATE_QUOTA = 256 * 1024  # bytes of one state's input or output


def accounts(count: int) -> list[str]:
    return [f"{600000000000 + index:012d}" for index in range(count)]


def largest_state(events: list[dict[str, Any]]) -> tuple[int, str]:
    """The largest input or output in a history (bytes), and the state (or event) it belongs to."""
    sizes, state = [(0, "-")], "-"
    for event in events:
        state = (event.get("stateEnteredEventDetails") or {}).get("name", state)
        for details in event.values():
            if isinstance(details, dict):
                sizes += [
                    (len(str(details[k]).encode()), f"{state}: {event['type']}")
                    for k in ("input", "output")
                    if isinstance(details.get(k), str)
                ]
    return max(sizes)


def events_per_iteration(execution: Execution) -> int:
    """The most events one inline Map iteration had (MapIterationStarted .. MapIterationSucceeded, same index)."""
    counts: Counter[int] = Counter()
    current: dict[str, int] = {}
    for event in execution.events:
        details = event.get("mapIterationStartedEventDetails") or event.get(
            "mapIterationSucceededEventDetails"
        )
        if details is not None:
            current["index"] = details["index"]
        if "index" in current:
            counts[current["index"]] += 1
    return max(counts.values(), default=0)


def run(destinations: int, concurrency: int, refuse: str, timeout: float) -> list[str]:
    fleet = accounts(max(1, destinations // len(REGIONS)))
    problems: list[str] = []
    config = fleet_config(
        SOURCE, fleet, REGIONS, repository="fleet-{account}/{repository}", max_concurrency=concurrency
    )
    with LocalRuntime(config, places=regional_places(SOURCE, fleet, REGIONS)) as runtime:
        if refuse:
            runtime.refuse_pushes("000000000000", refuse, True)
        tag = f"release-fleet-{int(time.time())}"
        image = build_image(f"fleet {tag}", ("linux/amd64",), layer_sizes=(16 * 1024, 4 * 1024))
        started = time.monotonic()
        runtime.push("app", tag, image)
        [(_, arn)] = runtime.deliver_events()
        execution = runtime.wait(arn, timeout=timeout)
        duration = time.monotonic() - started
        summary = (
            execution.state_outputs("Summarize")[-1]["summary"]
            if execution.state_outputs("Summarize")
            else {}
        )
        totals = summary.get("totals", {})
        count = len(fleet) * len(REGIONS)
        reached = sum(
            runtime.fronts[f"region-{region}"].current_digest(f"fleet-{account}/app", tag) == image.digest
            for account in fleet
            for region in REGIONS
        )
        refused = len(fleet) if refuse else 0
        [email] = runtime.notifications() or [{"subject": "", "message": ""}]
        page = email["message"].splitlines()
        print(
            f"fan-out: {count} destinations ({len(fleet)} accounts x {len(REGIONS)} Regions), concurrency {concurrency}"
        )
        print(f"  execution: {execution.status} {execution.error or ''} in {duration:.1f} s (push to end)")
        size, where = largest_state(execution.events)
        print(
            f"  parent history: {len(execution.events)} events (quota {HISTORY_QUOTA}); largest state {size} bytes ({where})"
        )
        print(f"  totals: {json.dumps({k: v for k, v in totals.items() if v})}")
        print(f"  destinations holding the digest: {reached}; refused Region {refuse or '-'}: {refused}")
        print(f"  email: {len(page)} lines, {len(email['message'])} characters; subject: {email['subject']}")
        if totals.get("targets") != count:
            problems.append(f"the summary counts {totals.get('targets')} destinations, not {count}")
        if totals.get("copied") != reached or reached != count - refused:
            problems.append(
                f"{reached} destinations hold the image; the summary says {totals.get('copied')} copied"
            )
        if totals.get("failed") != refused:
            problems.append(f"{totals.get('failed')} reported failed, {refused} refused pushes")
        if len(page) > PAGE_LINES:
            problems.append(f"the email is {len(page)} lines, over {PAGE_LINES}")
        if len(execution.events) > 200 or size > STATE_QUOTA // 2:
            problems.append(
                f"the parent history ({len(execution.events)} events) or a state ({size} bytes) is not bounded"
            )
        print("  --- email ---")
        print("\n".join(f"  | {line}" for line in page[:30]))
        print(f"  | ... ({len(page) - 30} more lines)" if len(page) > 30 else "  |")
        rule = {**config["rules"][0], "destinations": config["rules"][0]["destinations"][:1]}
        small = config | {
            "rules": [rule],
            "max_concurrency": 1,
        }  # one at a time: iterations do not interleave
    with LocalRuntime(small, places=regional_places(SOURCE, fleet[:2], REGIONS)) as runtime:
        small_tag = f"release-inline-{int(time.time())}"
        runtime.push(
            "app", small_tag, build_image(f"inline {small_tag}", ("linux/amd64",), layer_sizes=(1024,))
        )
        [(_, arn)] = runtime.deliver_events()
        inline = runtime.wait(arn, timeout=300)
        print(
            f"  one destination's iteration (= one child execution's states): {events_per_iteration(inline)} events"
        )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destinations", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=40, help="the config's max_concurrency (<= 40)")
    parser.add_argument(
        "--refuse", default="ap-southeast-2", help="a Region whose registry refuses pushes ('' none)"
    )
    parser.add_argument("--timeout", type=float, default=7200.0)
    args = parser.parse_args()
    with mock.patch("workflow.models.config_checks.MAX_DESTINATIONS", args.destinations):
        problems = run(args.destinations, args.concurrency, args.refuse, args.timeout)
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    print(f"FAN-OUT {'FAILED' if problems else 'PASSED'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
