"""Precheck and Gate against a registry that stalls: each ends with RegistryTimeout before its invocation's time
runs out, so the state machine's Retry gets it, never Lambda's Sandbox.Timedout.

The registry sits behind a fault proxy that reads each request and never answers; the handler's context says
how long the invocation has left (as Lambda's does).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from lambdas import gate, precheck
from tests.integration.faults import Fault, FaultProxy
from tests.integration.images import ImageBuilder
from tests.integration.registries import RegistryServer
from tests.unit.conftest import FakeLambdaContext
from workflow.core.exceptions import RegistryTimeout
from workflow.models.config import parse_config
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_request
from workflow.registry.deadline import RESERVE

# moto (tests/conftest.py's `aws`) for STS (the destination role) and ECR (scan findings).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws")]
SOURCE, DESTINATION = {"account": "111111111111", "region": "us-east-1"}, "222222222222"
REMAINING_MS = 3000


def stalled(proxy: FaultProxy) -> FaultProxy:
    """`proxy`, its manifest requests never answered."""
    proxy.add(Fault("HEAD", "/manifests/", "stall", times=100))
    proxy.add(Fault("GET", "/manifests/", "stall", times=100))
    return proxy


def config_for(source: str, destination: str, repository: str, *, gated: bool) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": "releases",
        "repositories": [repository],
        "tags": {"include": ["release-*"]},
        "destinations": [{"account": DESTINATION, "regions": ["eu-west-1"]}],
    }
    if gated:
        rule["gates"] = {"scan": {"block_at": "CRITICAL"}}
    return {
        "source": SOURCE,
        "rules": [rule],
        "endpoints": [
            {**SOURCE, "registry": source, "insecure": True},
            {"account": DESTINATION, "region": "eu-west-1", "registry": destination, "insecure": True},
        ],
    }


def timed(call: Any) -> tuple[BaseException, float]:
    """The error `call()` raised and how long it took."""
    started = time.monotonic()
    with pytest.raises(RegistryTimeout) as raised:
        call()
    return raised.value, time.monotonic() - started


def test_precheck_ends_a_stalled_registry_with_registry_timeout_before_its_deadline(
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Any,
    builder: ImageBuilder,
    repo: str,
) -> None:
    # Given an image whose source registry stalls every manifest request
    builder.image(repo, "release-1")
    proxy = stalled(proxy_for(source_registry))
    cfg = parse_config(config_for(proxy.host, dest_registry.host, repo, gated=False))
    [target] = plan(parse_request({"repository": repo, "tag": "release-1"}), cfg).targets
    event = {"execution": "stall-1", "dry_run": False, "target": target.model_dump(mode="json")}
    # When the Precheck function runs with 3 s left in its invocation
    error, seconds = timed(lambda: precheck.handler(event, FakeLambdaContext(remaining_ms=REMAINING_MS)))
    # Then it ends with RegistryTimeout naming what stalled, after the registry had its share of the time
    # and before the invocation's end (Lambda would have ended it with Sandbox.Timedout)
    assert "HEAD manifest" in str(error), error
    assert REMAINING_MS / 1000 * (1 - RESERVE) - 0.5 <= seconds < REMAINING_MS / 1000, seconds
    assert proxy.requests("HEAD", "/manifests/")


def test_gate_ends_a_stalled_registry_with_registry_timeout_before_its_deadline(
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Any,
    builder: ImageBuilder,
    repo: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a gated image whose source registry stalls every manifest request
    builder.image(repo, "release-1")
    proxy = stalled(proxy_for(source_registry))
    raw = config_for(proxy.host, dest_registry.host, repo, gated=True)
    (tmp_path / "replication.json").write_text(json.dumps(raw))
    monkeypatch.setenv("REPLICATION_CONFIG_FILE", str(tmp_path / "replication.json"))
    result = plan(parse_request({"repository": repo, "tag": "release-1"}), parse_config(raw))
    planned = {**result.model_dump(mode="json"), "target_count": len(result.targets), "max_concurrency": 1}
    # When the Gate function looks with 3 s left in its invocation
    event = {"execution": "stall-2", "plan": planned}
    error, seconds = timed(lambda: gate.handler(event, FakeLambdaContext(remaining_ms=REMAINING_MS)))
    # Then the look ends with RegistryTimeout before the invocation's end, for the state machine to retry
    assert "HEAD manifest" in str(error), error
    assert REMAINING_MS / 1000 * (1 - RESERVE) - 0.5 <= seconds < REMAINING_MS / 1000, seconds
