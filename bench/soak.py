"""Soak the whole workflow in the local runtime: many executions at once, faults injected at random.

Every registry sits behind a chaos proxy (tests/integration/faults.py's FaultProxy, with
faults drawn at random instead of armed by a test): 5xx answers, 429 with Retry-After, connection
resets, bodies cut short, slow bodies, and one destination down (503 for everything) for a while.
Many pushes of several repositories start their executions together. When all have ended, the run
checks, and exits 1 when any check fails:
- every image is at every destination with its digest (read with skopeo, past the proxy), or its
  summary line says failed with a named error;
- no execution ended in States.Runtime (or any States.* error that no Catch can catch);
- the summaries' counts equal what is at the destinations;
- with the faults off, a re-run of every execution that failed repairs every destination.

Run: `make soak` (`.venv/bin/python bench/soak.py`; `--images N --seed S --fault-rate P`).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.conftest import skopeo_digest
from tests.integration.faults import Fault, FaultProxy
from workflow.local.images import Image, build_image
from workflow.local.runtime import Execution, LocalRuntime

SOURCE = {"account": "111111111111", "region": "us-east-1"}
DESTINATIONS = [
    {"account": "222222222222", "region": "eu-west-1"},
    {"account": "333333333333", "region": "us-west-2"},
    {"account": "444444444444", "region": "ap-southeast-2"},
]
REPOSITORIES = ("app", "services/api", "services/worker")
UNCATCHABLE = ("States.Runtime", "States.DataLimitExceeded")
# (weight, kind, status, headers): what a drawn fault does; "down" windows are separate.
FAULT_KINDS: list[tuple[int, str, int, dict[str, str]]] = [
    (4, "status", 500, {}),
    (2, "status", 503, {}),
    (3, "status", 429, {"Retry-After": "1"}),
    (3, "reset", 0, {}),
    (2, "truncate", 0, {}),
    (2, "slow", 0, {}),
]


def soak_config() -> dict[str, Any]:
    """Three repositories' release-* tags to three accounts/Regions, email on failure."""
    return {
        "source": SOURCE,
        "rules": [
            {
                "name": "releases",
                "repositories": list(REPOSITORIES),
                "tags": {"include": ["release-*"]},
                "destinations": [{"account": d["account"], "regions": [d["region"]]} for d in DESTINATIONS],
            }
        ],
        "notifications": {"emails": ["platform-team@example.com"], "on": "failure"},
        "max_concurrency": 3,
    }


class ChaosProxy(FaultProxy):
    """A FaultProxy whose faults are drawn at random for each request, plus a switchable outage."""

    def __init__(self, upstream: str, rng: random.Random, rate: float) -> None:
        super().__init__(upstream)
        self.rng, self.rate = rng, rate
        self.enabled = True
        self.down_until = 0.0
        self.injected: Counter[str] = Counter()

    def _match(self, method: str, path: str) -> Fault | None:
        if not self.enabled or not path.startswith("/v2/") or path == "/v2/":
            return None
        with self._lock:
            if time.monotonic() < self.down_until:
                self.injected["down (503)"] += 1
                return Fault(method, ".*", "status", status=503, body=b'{"errors":[{"code":"UNAVAILABLE"}]}')
            if self.rng.random() >= self.rate:
                return None
            weights = [weight for weight, *_ in FAULT_KINDS]
            _, kind, status, headers = self.rng.choices(FAULT_KINDS, weights)[0]
            if kind in ("reset", "truncate", "slow") and method not in ("GET",):
                kind, status = "status", 502
            self.injected[f"{kind} {status}" if kind == "status" else kind] += 1
            return Fault(method, ".*", kind, status=status, headers=headers)


class SoakRuntime(LocalRuntime):
    """The local runtime with a ChaosProxy in front of every registry (pushes to the source bypass it)."""

    def __init__(self, config: dict[str, Any], rng: random.Random, rate: float) -> None:
        super().__init__(config)
        self.rng, self.rate = rng, rate
        self.proxies: dict[str, ChaosProxy] = {}

    def _endpoints(self) -> list[dict[str, Any]]:
        endpoints = super()._endpoints()
        for endpoint, place in zip(endpoints, self.places, strict=True):
            proxy = ChaosProxy(endpoint["registry"], random.Random(self.rng.random()), self.rate)
            self._stack.callback(proxy.stop)
            self.proxies[place.name] = proxy
            endpoint["registry"] = proxy.host
        return endpoints


@dataclass
class Push:
    """One image pushed to the source, and the execution its push event started."""

    repository: str
    tag: str
    image: Image
    arn: str = ""
    execution: Execution | None = None


@contextmanager
def outage(proxy: ChaosProxy, after: float, seconds: float) -> Iterator[None]:
    """Take one destination down for `seconds`, starting `after` seconds from now."""
    timer = threading.Timer(after, lambda: setattr(proxy, "down_until", time.monotonic() + seconds))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def summary_of(execution: Execution) -> dict[str, Any] | None:
    """The Summarize state's output, or None when the execution never got there."""
    outputs = execution.state_outputs("Summarize")
    return outputs[-1]["summary"] if outputs else None


def uncatchable(execution: Execution) -> list[str]:
    """States.* errors that no Catch catches, anywhere in the execution's history."""
    found = [error for error in execution.errors() if error in UNCATCHABLE]
    if execution.error in UNCATCHABLE:
        found.append(execution.error)
    return found


def run_all(runtime: SoakRuntime, pushes: list[Push], start: Any, timeout: float) -> None:
    """Start every execution at once, then wait for each."""
    for push in pushes:
        push.arn = start(push)
    for push in pushes:
        push.execution = runtime.wait(push.arn, timeout=timeout)


def check(runtime: SoakRuntime, pushes: list[Push], problems: list[str]) -> Counter[str]:
    """Compare every summary with what skopeo finds at each destination; returns outcome counts."""
    outcomes: Counter[str] = Counter()
    for push in pushes:
        execution = push.execution
        assert execution is not None
        name = f"{push.repository}:{push.tag}"
        if found := uncatchable(execution):
            problems.append(f"{name}: uncatchable error(s) {found}")
        summary = summary_of(execution)
        if summary is None:
            problems.append(f"{name}: no summary ({execution.status} {execution.error}: {execution.cause})")
            continue
        lines = {line["destination"].split()[0]: line for line in summary["lines"]}
        for place in DESTINATIONS:
            key = f"{place['account']}/{place['region']}"
            line = lines.get(key)
            registry = runtime.registry_of(place["account"], place["region"])
            digest = skopeo_digest(registry.host, push.repository, push.tag)
            if line is None:
                problems.append(f"{name} -> {key}: no summary line")
                continue
            outcomes[line["action"] if line["action"] != "failed" else f"failed {line['error']}"] += 1
            if line["action"] == "failed":
                if not line.get("error") or line["error"].startswith("States."):
                    problems.append(f"{name} -> {key}: failed without a named error: {line.get('error')}")
            elif digest != push.image.digest:
                problems.append(f"{name} -> {key}: summary says {line['action']}, destination holds {digest}")
        totals = summary["totals"]
        succeeded = sum(totals[k] for k in ("copied", "tagged", "present"))
        arrived = sum(
            skopeo_digest(runtime.registry_of(p["account"], p["region"]).host, push.repository, push.tag)
            == push.image.digest
            for p in DESTINATIONS
        )
        if succeeded != arrived:
            problems.append(
                f"{name}: summary counts {succeeded} delivered, {arrived} are at the destinations"
            )
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="pushes to replicate (default 12)")
    parser.add_argument(
        "--fault-rate", type=float, default=0.08, help="share of requests faulted (default 0.08)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait per execution")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    started = time.monotonic()
    print(
        f"soak: {args.images} images x {len(DESTINATIONS)} destinations, fault rate {args.fault_rate}, seed {seed}"
    )
    problems: list[str] = []
    with SoakRuntime(soak_config(), rng, args.fault_rate) as runtime:
        pushes = []
        for index in range(args.images):
            repository = REPOSITORIES[index % len(REPOSITORIES)]
            tag = f"release-{index}-{rng.randrange(1 << 32):08x}"
            platforms = ("linux/amd64", "linux/arm64") if index % 2 == 0 else ("linux/amd64",)
            image = build_image(f"soak {tag}", platforms, layer_sizes=(96 * 1024, 24 * 1024))
            runtime.push(repository, tag, image)
            pushes.append(Push(repository, tag, image))

        # Each push's own event is on the queue already; taken off here and sent again one push at a time, so
        # that every execution is paired with its push.
        runtime.drop_events()

        def by_event(push: Push) -> str:
            runtime.put_push_event(push.repository, push.tag, push.image.digest)
            [(_, arn)] = runtime.deliver_events()
            return arn

        destinations = sorted(name for name in runtime.proxies if name != "source")
        down = runtime.proxies[destinations[rng.randrange(len(destinations))]]
        with outage(down, after=2.0, seconds=15.0):
            run_all(runtime, pushes, by_event, args.timeout)
        soaked = time.monotonic() - started
        outcomes = check(runtime, pushes, problems)
        injected = sum((proxy.injected for proxy in runtime.proxies.values()), Counter())
        failed = [push for push in pushes if push.execution and push.execution.status != "SUCCEEDED"]
        print(f"  executions: {len(pushes)} in {soaked:.1f} s; {len(failed)} not SUCCEEDED")
        print(
            f"  faults injected: {sum(injected.values())} ({', '.join(f'{k} {v}' for k, v in injected.most_common())})"
        )
        print(f"  outcomes per destination: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")

        for proxy in runtime.proxies.values():
            proxy.enabled = False
        repair_started = time.monotonic()

        def by_hand(push: Push) -> str:
            return runtime.start_execution({"repository": push.repository, "tag": push.tag})

        run_all(runtime, failed, by_hand, args.timeout)
        repaired = check(runtime, failed, problems)
        missing = [
            f"{push.repository}:{push.tag} -> {place['account']}/{place['region']}"
            for push in pushes
            for place in DESTINATIONS
            if skopeo_digest(
                runtime.registry_of(place["account"], place["region"]).host, push.repository, push.tag
            )
            != push.image.digest
        ]
        problems += [f"not repaired: {entry}" for entry in missing]
        print(
            f"  re-run of {len(failed)} failed execution(s), faults off, in {time.monotonic() - repair_started:.1f} s: "
            f"{', '.join(f'{k} {v}' for k, v in sorted(repaired.items())) or 'nothing to do'}; "
            f"{len(pushes) * len(DESTINATIONS) - len(missing)}/{len(pushes) * len(DESTINATIONS)} image copies in place"
        )
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    print(f"SOAK {'FAILED' if problems else 'PASSED'} in {time.monotonic() - started:.1f} s (seed {seed})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
