"""Source bytes read per push, and bytes sent between Regions, for 12 destinations in 3 Regions: without and with
`regional_seeds` (one copy across Regions per Region), in the local runtime.

Every destination (4 accounts x eu-west-1, us-west-2, ap-southeast-2; the source in us-east-1) has its own registry. A
byte-counting proxy (tests/integration/faults.py's FaultProxy) stands in front of the source registry and counts the
blob bytes it serves: what a push reads from the source. Bytes sent between Regions come from the destinations'
records: what a copier in the source's Region wrote to another Region (the copy job runs there), i.e. bytes copied
less those a relay moved inside the destination's Region. Each mode runs in a fresh runtime, pushes one image and waits
for its run; the run exits 1 unless every destination holds the image and, with seeds, the source is read once per
Region.

Run: `.venv/bin/python bench/seeds.py [--layer-mib 4] [--runs 1]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.faults import BLOB_GET_RE, FaultProxy
from workflow.local.images import Image, build_image
from workflow.local.places import fleet_config
from workflow.local.runtime import Execution, LocalRuntime

SOURCE = {"account": "111111111111", "region": "us-east-1"}
REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-2")
ACCOUNTS = ("810000000001", "810000000002", "810000000003", "810000000004")


class CountingProxy(FaultProxy):
    """A proxy that counts the blob bytes it serves (GET /v2/<name>/blobs/<digest>)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.blob_bytes = 0
        self._count_lock = threading.Lock()

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        status, sent_headers, data = super()._forward(method, path, headers, body)
        if method == "GET" and status == 200 and BLOB_GET_RE.match(path.split("?")[0]):
            with self._count_lock:
                self.blob_bytes += len(data)
        return status, sent_headers, data


class CountedRuntime(LocalRuntime):
    """The local runtime with the counting proxy in front of the source registry (pushes to it bypass the proxy)."""

    def _endpoints(self) -> list[dict[str, Any]]:
        endpoints = super()._endpoints()
        for endpoint, place in zip(endpoints, self.places, strict=True):
            if place.name == "source":
                self.proxy = CountingProxy(endpoint["registry"])
                self._stack.callback(self.proxy.stop)
                endpoint["registry"] = self.proxy.host
        return endpoints


def config(seeds: bool) -> dict[str, Any]:
    return fleet_config(
        SOURCE, ACCOUNTS, REGIONS, max_concurrency=len(ACCOUNTS) * len(REGIONS), regional_seeds=seeds
    )


def records(execution: Execution) -> list[dict[str, Any]]:
    entered = [
        e
        for e in execution.events
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "Summarize"
    ]
    return list(json.loads(entered[-1]["stateEnteredEventDetails"]["input"])["plan"]["targets"])


def image_bytes(image: Image) -> int:
    """The bytes of every blob of every platform (configs and layers): what one full copy reads."""
    return sum(len(blob.data) for blob in image.blobs)


def run(seeds: bool, layer_mib: int) -> dict[str, Any]:
    with CountedRuntime(config(seeds)) as runtime:
        tag = f"release-{'seeded' if seeds else 'plain'}-{int(time.time())}"
        image = build_image(
            f"bench {tag}", ("linux/amd64", "linux/arm64"), layer_sizes=(layer_mib * 1024 * 1024, 256 * 1024)
        )
        runtime.push("app", tag, image)
        started = time.monotonic()
        [(_, arn)] = runtime.deliver_events()
        execution = runtime.wait(arn, timeout=1800)
        seconds = time.monotonic() - started
        found = records(execution)
        reached = sum(
            runtime.fronts[f"{account}-{region}"].current_digest("app", tag) == image.digest
            for account in ACCOUNTS
            for region in REGIONS
        )
        between = sum(
            r["bytes_copied"] - r.get("bytes_in_region", 0) for r in found if r["region"] != SOURCE["region"]
        )
        return {
            "mode": "regional_seeds" if seeds else "plain",
            "status": execution.status,
            "seconds": seconds,
            "image": image_bytes(image),
            "source_read": runtime.proxy.blob_bytes,
            "between_regions": between,
            "in_region": sum(r.get("bytes_in_region", 0) for r in found),
            "reached": reached,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-mib", type=int, default=4, help="size of each platform's large layer (MiB)")
    parser.add_argument("--runs", type=int, default=1, help="runs per mode (medians shown)")
    args = parser.parse_args()
    problems: list[str] = []
    rows = []
    for seeds in (False, True):
        runs = [run(seeds, args.layer_mib) for _ in range(args.runs)]
        row = {key: runs[0][key] for key in ("mode", "image")}
        for key in ("seconds", "source_read", "between_regions", "in_region", "reached"):
            row[key] = statistics.median(r[key] for r in runs)
        row["status"] = ",".join(r["status"] for r in runs)
        rows.append(row)
    size = rows[0]["image"]
    print(
        f"12 destinations (4 accounts x {', '.join(REGIONS)}), image {size / 2**20:.2f} MiB of blobs, {args.runs} run(s) per mode"
    )
    print(
        "| mode | source bytes read | x image | between Regions | x image | inside Regions | time (s) | destinations reached |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['mode']} | {row['source_read'] / 2**20:.1f} MiB | {row['source_read'] / size:.2f} | "
            f"{row['between_regions'] / 2**20:.1f} MiB | {row['between_regions'] / size:.2f} | "
            f"{row['in_region'] / 2**20:.1f} MiB | {row['seconds']:.1f} | {row['reached']:.0f}/12 |"
        )
        if row["reached"] != 12:
            problems.append(
                f"{row['mode']}: {row['reached']}/12 destinations hold the image ({row['status']})"
            )
    if rows[1]["source_read"] > len(REGIONS) * size * 1.05:
        problems.append(
            f"with seeds the source was read {rows[1]['source_read'] / size:.2f} x, over {len(REGIONS)} x"
        )
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"SEEDS {'FAILED' if problems else 'PASSED'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
