"""The local runtime for the e2e tests: loopback registries, moto, the real ASL and handlers.

One runtime serves the suite in each process (each test uses its own tags); the failing-destination and
partition tests start their own. moto is one per process and a runtime resets it when it starts, so a test
starting its own runtime stops the shared one first, and the shared one starts again when next needed.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from workflow.local.executions import TERMINAL
from workflow.local.images import Image, build_image, push_image
from workflow.local.runtime import Execution, LocalRuntime, Place, places_for
from workflow.local.signing import new_key, public_pem
from workflow.pipeline.announce import SOURCE as EVENT_SOURCE

SOURCE = {"account": "111111111111", "region": "us-east-1"}
EU = {"account": "222222222222", "region": "eu-west-1"}
US = {"account": "333333333333", "region": "us-west-2"}
AP = {"account": "444444444444", "region": "ap-southeast-2"}
PLATFORMS = ("linux/amd64", "linux/arm64")
# The cosign key the gated rules trust (tests/e2e/test_gates.py signs with it).
SIGNING_KEY = new_key()
ACCEPTED_FINDING = "CVE-2026-0001"
# The AWS Signer profile of the `managed` rule's ECR managed signing policy.
SIGNING_PROFILE = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/release_signing"
# ECR answers ScanNotFoundException for this long after a push (the scan fake; short, as the e2e Gate looks
# again every second).
SCAN_NOT_FOUND_SECONDS = 1.0
# How long a test waits for an execution to end, and how often it looks at its status meanwhile.
EXECUTION_TIMEOUT_SECONDS = 180.0
STATUS_POLL_SECONDS = 0.05


def destination(place: dict[str, str]) -> dict[str, Any]:
    """A config destination for one account/Region."""
    return {"account": place["account"], "regions": [place["region"]]}


def make_config(destinations: list[dict[str, str]]) -> dict[str, Any]:
    """`app` replicates release-* (excluding *-rc*) to the given destinations; `web` too, and its deleted
    tags follow (propagate_deletes); email on failure only."""
    releases = {
        "name": "releases",
        "repositories": ["app"],
        "tags": {"include": ["release-*"], "exclude": ["*-rc*"]},
        "destinations": [destination(place) for place in destinations],
    }
    withdrawals = {**releases, "name": "withdrawals", "repositories": ["web"], "propagate_deletes": True}
    return {
        "source": SOURCE,
        "rules": [releases, withdrawals],
        "notifications": {"emails": ["platform-team@example.com"], "on": "failure"},
        "max_concurrency": 3,
    }


def gated_rules() -> list[dict[str, Any]]:
    """Promotion-gated rules for the `gated`, `quick` and `signed` repositories (tests/e2e/test_gates*.py).

    `prod` (eu-west-1): scan at CRITICAL with one accepted finding, a signature by SIGNING_KEY, override
    allowed; `mirror` (us-west-2): scan at CRITICAL only, no override; `quick` (eu-west-1): scan at HIGH
    without waiting; `managed` (eu-west-1): signed by ECR managed signing with SIGNING_PROFILE; `signed`
    (both): every tag (`*`), scan at CRITICAL and a signature by SIGNING_KEY, each waited for up to 1 minute.
    """
    scan = {"block_at": "CRITICAL", "wait_minutes": 1}
    rule = {"repositories": ["gated"], "tags": {"include": ["release-*"]}}
    accepted = {"id": ACCEPTED_FINDING, "reason": "not reachable: no zlib use"}
    return [
        {
            **rule,
            "name": "prod",
            "destinations": [destination(EU)],
            "gates": {
                "scan": {**scan, "ignore": [accepted]},
                "signature": {"cosign_keys": [public_pem(SIGNING_KEY)]},
                "allow_override": True,
            },
        },
        {**rule, "name": "mirror", "destinations": [destination(US)], "gates": {"scan": scan}},
        {
            "name": "quick",
            "repositories": ["quick"],
            "tags": {"include": ["release-*"]},
            "destinations": [destination(EU)],
            "gates": {"scan": {"block_at": "HIGH", "wait_minutes": 0}},
        },
        {
            "name": "managed",
            "repositories": ["managed"],
            "tags": {"include": ["release-*"]},
            "destinations": [destination(EU)],
            "gates": {"signature": {"ecr_managed_signing": {"signing_profile_arn": SIGNING_PROFILE}}},
        },
        {
            "name": "signed",
            "repositories": ["signed"],
            "tags": {"include": ["*"]},
            "destinations": [destination(EU), destination(US)],
            "gates": {
                "scan": scan,
                "signature": {"cosign_keys": [public_pem(SIGNING_KEY)], "wait_minutes": 1},
            },
        },
    ]


def skopeo_digest(host: str, repository: str, tag: str) -> str | None:
    """The manifest digest skopeo reads for host/repository:tag, or None when the tag does not exist."""
    result = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            f"docker://{host}/{repository}:{tag}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        assert "manifest unknown" in result.stderr, result.stderr
        return None
    return result.stdout.strip()


@dataclass
class E2E:
    """A running runtime plus helpers that read like the test steps."""

    runtime: LocalRuntime

    def new_tag(self, prefix: str = "release") -> str:
        """A tag no other test uses."""
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def push(self, tag: str, image: Image | None = None, repository: str = "app") -> Image:
        """Push an image (a new two-platform one by default) to the source; the source's ECR emits its PUSH
        event, which waits at the rule's target until `run_event` (or the test's end, which drops it)."""
        image = image or build_image(f"e2e {tag}", PLATFORMS, layer_sizes=(8 * 1024, 2 * 1024))
        self.runtime.push(repository, tag, image)
        return image

    def run_event(self, tag: str, image: Image, repository: str = "app") -> list[Execution]:
        """Start an execution for every event the rule delivered (the push of `repository:tag` and its
        `image` emitted one) and wait for each."""
        return self.deliver()

    def deliver(self) -> list[Execution]:
        """Start an execution for every event the rule delivered so far; wait for each."""
        return [self.finished(arn) for _, arn in self.runtime.deliver_events()]

    def finished(self, arn: str) -> Execution:
        """The execution once it has ended: its status is looked at often and cheaply, its history (which
        `LocalRuntime.wait` reads at every look, for the demo's live printer) only once at the end."""
        sfn = self.runtime.client("stepfunctions")
        deadline = time.monotonic() + EXECUTION_TIMEOUT_SECONDS
        while sfn.describe_execution(executionArn=arn)["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                break
            time.sleep(STATUS_POLL_SECONDS)
        return self.runtime.wait(arn, timeout=max(0.0, deadline - time.monotonic()))

    def resend_event(self, tag: str, image: Image, repository: str = "app") -> list[Execution]:
        """Send the push's event again (a duplicate or late delivery) and run what it starts."""
        self.runtime.put_push_event(repository, tag, image.digest)
        return self.deliver()

    def run_delete_event(self, tag: str, digest: str, repository: str = "web") -> list[Execution]:
        """Untag at the source (its ECR emits the DELETE event, for `digest`); wait for what it started."""
        assert self.runtime.fronts["source"].current_digest(repository, tag) == digest
        assert self.runtime.untag(repository, tag)
        return self.deliver()

    def seed(self, tag: str, image: Image, places: list[dict[str, str]], repository: str = "web") -> None:
        """Put the image under `tag` at the source and at `places` directly (as a replication would have);
        the seeding push's event is dropped, as one from before the test."""
        self.push(tag, image, repository)
        for place in places:
            push_image(
                self.runtime.registry_of(place["account"], place["region"]).url, repository, tag, image
            )
        self.runtime.drop_events()

    def run_manual(self, payload: Any) -> Execution:
        """Start an execution by hand and wait for it."""
        return self.finished(self.runtime.start_execution(payload))

    def digest_at(self, place: dict[str, str], tag: str, repository: str = "app") -> str | None:
        """What skopeo finds at a destination."""
        return skopeo_digest(
            self.runtime.registry_of(place["account"], place["region"]).host, repository, tag
        )

    def builds(self) -> int:
        """How many CodeBuild jobs ran so far."""
        return len(self.runtime.codebuild.builds)


def listen(e2e: E2E, name: str, detail_types: list[str]) -> str:
    """A rule `name` on the default bus for our events of these detail-types, delivering to a new queue."""
    events, sqs = e2e.runtime.client("events"), e2e.runtime.client("sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [EVENT_SOURCE], "detail-type": detail_types}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    return str(queue)


def received(e2e: E2E, queue: str) -> list[dict[str, Any]]:
    """Every event the queue holds (taken off it)."""
    sqs, found = e2e.runtime.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return found


def statuses(execution: Execution) -> dict[str, str]:
    """`account/region -> action` from the summary lines of a finished execution."""
    summary = execution.state_outputs("Summarize")[-1]["summary"]
    return {f"{line['account']}/{line['region']}": line["action"] for line in summary["lines"]}


class SharedRuntime:
    """The runtime the e2e suite shares: source, eu-west-1, us-west-2; `app` replicates ungated, `gated`,
    `quick` and `signed` through promotion gates, `guarded` refuses tag conflicts. Started on first use; stopped
    by a test that starts a runtime of its own (one moto per process: a second runtime would reset this one's
    AWS resources)."""

    def __init__(self) -> None:
        self.runtime: LocalRuntime | None = None

    def get(self) -> E2E:
        """The running runtime, started if it is not."""
        if self.runtime is None:
            config = make_config([EU, US])
            config["rules"] += gated_rules()
            # `guarded` never overwrites a destination tag at another digest (tests/e2e/test_tag_conflict.py).
            config["rules"].append(
                {
                    "name": "guarded",
                    "repositories": ["guarded"],
                    "tags": {"include": ["release-*"]},
                    "destinations": [destination(EU), destination(US)],
                    "on_tag_conflict": "refuse",
                }
            )
            self.runtime = LocalRuntime(config, scan_not_found_seconds=SCAN_NOT_FOUND_SECONDS).__enter__()
        return E2E(self.runtime)

    def stop(self) -> None:
        """Stop the runtime if it runs."""
        runtime, self.runtime = self.runtime, None
        if runtime is not None:
            runtime.__exit__(None, None, None)


@pytest.fixture(scope="package")
def shared_runtime() -> Iterator[SharedRuntime]:
    """The shared runtime (package scope: stopped before this process runs another suite, whose moto would
    reset it)."""
    shared = SharedRuntime()
    yield shared
    shared.stop()


@pytest.fixture(autouse=True)
def undelivered_events_are_dropped(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the shared runtime, the push events it left undelivered (a push followed by a
    manual run) are dropped, so that they start nothing in the next test, and the emails it did not read are
    drained, so that the next test sees only its own."""
    yield
    runtime = request.getfixturevalue("shared_runtime").runtime if "e2e" in request.fixturenames else None
    if runtime is not None:
        runtime.drop_events()
        runtime.notifications()


@pytest.fixture(autouse=True)
def own_runtime_stops_the_shared_one(request: pytest.FixtureRequest) -> None:
    """A test marked own_runtime starts a runtime of its own, whose moto would reset the shared one's: the
    shared runtime is stopped first (and starts again on next use)."""
    if request.node.get_closest_marker("own_runtime") is not None:
        request.getfixturevalue("shared_runtime").stop()


@pytest.fixture(scope="module", autouse=True)
def own_runtime_module_stops_the_shared_one(request: pytest.FixtureRequest) -> None:
    """A module marked own_runtime may start its runtime in a module fixture (tests/e2e/test_registry_stalls.py),
    before any test's function fixtures run: the shared runtime is stopped before that one starts, or stopping it
    afterwards would reset moto under the module's runtime."""
    if request.node.get_closest_marker("own_runtime") is not None:
        request.getfixturevalue("shared_runtime").stop()


@pytest.fixture
def e2e(shared_runtime: SharedRuntime) -> E2E:
    """The shared runtime, running."""
    return shared_runtime.get()


@pytest.fixture
def runtime_with_readonly(shared_runtime: SharedRuntime) -> Iterator[Callable[[int], E2E]]:
    """Start a runtime with three destinations, the one at the given index read-only (the shared one stopped)."""
    shared_runtime.stop()
    with_stack: list[LocalRuntime] = []

    def start(broken: int) -> E2E:
        config = make_config([EU, US, AP])
        places = places_for(config)
        places[broken + 1] = Place(
            places[broken + 1].name, places[broken + 1].account, places[broken + 1].region, True
        )
        runtime = LocalRuntime(config, places=places).__enter__()
        with_stack.append(runtime)
        return E2E(runtime)

    yield start
    for runtime in with_stack:
        runtime.__exit__(None, None, None)
