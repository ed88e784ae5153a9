"""A registry that stalls, through the whole workflow: Precheck and Gate end with RegistryTimeout before their
Lambda timeout, and the state machine retries them.

The runtime's functions keep Lambda's rule (workflow/local/bridges.py): an invocation still running at its
timeout ends with Sandbox.Timedout, which no Retry matches. Precheck and Gate get a few seconds here instead
of their deployed minutes, and a fault proxy in front of a registry holds its first manifest request unanswered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import E2E, EU, PLATFORMS, SOURCE, destination
from tests.integration.faults import Fault, FaultProxy
from workflow.local.images import build_image
from workflow.local.runtime import Execution, LocalRuntime
from workflow.local.scans import complete

pytestmark = [pytest.mark.e2e, pytest.mark.own_runtime]
SECONDS = 4  # Precheck's and Gate's timeout here


class StallingRuntime(LocalRuntime):
    """The local runtime with a fault proxy in front of every registry (pushes to the source bypass it)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(
            config, function_timeouts={"precheck": SECONDS, "gate": SECONDS}, scan_not_found_seconds=0.0
        )
        self.proxies: dict[str, FaultProxy] = {}

    def _endpoints(self) -> list[dict[str, Any]]:
        endpoints = super()._endpoints()
        for endpoint, place in zip(endpoints, self.places, strict=True):
            proxy = FaultProxy(endpoint["registry"])
            self._stack.callback(proxy.stop)
            self.proxies[place.name] = proxy
            endpoint["registry"] = proxy.host
        return endpoints


def invocations(execution: Execution, function: str) -> int:
    """How many times the execution invoked the function `ecr-replication-<function>` (retries included)."""
    return sum(
        1
        for event in execution.events
        if event["type"] == "TaskScheduled"
        and f"function:ecr-replication-{function}" in event["taskScheduledEventDetails"]["parameters"]
    )


@pytest.fixture(scope="module")
def stalling() -> Iterator[StallingRuntime]:
    """`app` to eu-west-1 ungated; `gated` to eu-west-1 through a scan gate that does not wait."""
    rule = {"tags": {"include": ["release-*"]}, "destinations": [destination(EU)]}
    config = {
        "source": SOURCE,
        "rules": [
            {**rule, "name": "releases", "repositories": ["app"]},
            {
                **rule,
                "name": "gated",
                "repositories": ["gated"],
                "gates": {"scan": {"block_at": "CRITICAL", "wait_minutes": 0}},
            },
        ],
        "notifications": {"emails": ["platform-team@example.com"], "on": "failure"},
    }
    with StallingRuntime(config) as runtime:
        yield runtime


def test_precheck_ends_a_stalled_registry_as_registry_timeout_and_the_state_machine_retries(
    stalling: StallingRuntime,
) -> None:
    # Given the destination registry holding its first manifest request unanswered
    e2e = E2E(stalling)
    tag = e2e.new_tag()
    image = e2e.push(tag, build_image(f"stall {tag}", PLATFORMS, layer_sizes=(2048, 1024)))
    stall = stalling.proxies[f"{EU['account']}-{EU['region']}"].add(Fault("HEAD", "/manifests/", "stall"))
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image)
    # Then the first Precheck ended with RegistryTimeout (not Sandbox.Timedout), the retry found the registry
    # answering, and the image was copied
    assert stall.hits == 1
    assert execution.errors() == ["RegistryTimeout"], execution.errors()
    assert invocations(execution, "precheck") == 2
    assert execution.status == "SUCCEEDED", execution.cause
    assert e2e.digest_at(EU, tag) == image.digest


def test_gate_ends_a_stalled_registry_as_registry_timeout_and_the_state_machine_retries(
    stalling: StallingRuntime,
) -> None:
    # Given a gated image with a clean scan, and the source registry holding its next manifest request (the Gate's)
    e2e = E2E(stalling)
    tag = e2e.new_tag()
    image = e2e.push(tag, build_image(f"gated {tag}", PLATFORMS, layer_sizes=(2048, 1024)), "gated")
    stalling.scans.set_image("gated", image, complete([]))
    stall = stalling.proxies["source"].add(Fault("HEAD", "/manifests/", "stall"))
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="gated")
    # Then the first Gate ended with RegistryTimeout, the retry gated it, and the image was copied
    assert stall.hits == 1
    assert execution.errors() == ["RegistryTimeout"], execution.errors()
    assert invocations(execution, "gate") == 2
    assert execution.status == "SUCCEEDED", execution.cause
    assert e2e.digest_at(EU, tag, "gated") == image.digest
