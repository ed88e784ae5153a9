"""Scans of what ECR scans: the platform images of an index (not the index, not its attestations), worst decides."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.unit.fake_signatures import FakeRegistry
from workflow.core.exceptions import GateCheckFailed
from workflow.gates.image import gate_image
from workflow.gates.platforms import MAX_PLATFORMS
from workflow.models.policy import Gates
from workflow.registry.media import OCI_INDEX, OCI_MANIFEST, sha256_digest

CLEAN = {"imageScanStatus": {"status": "COMPLETE"}, "imageScanFindings": {"findings": []}}
CRITICAL = {
    "imageScanStatus": {"status": "COMPLETE"},
    "imageScanFindings": {
        "findings": [{"name": "CVE-2026-1234", "severity": "CRITICAL"}],
        "findingSeverityCounts": {"CRITICAL": 1},
    },
}
GATES = {"prod": Gates.model_validate({"scan": {"block_at": "CRITICAL"}})}


def image_manifest(label: str) -> bytes:
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": sha256_digest(label.encode()),
        "size": 1,
    }
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}
    ).encode()


def entry(raw: bytes, platform: str, **annotations: str) -> dict[str, Any]:
    os_name, architecture = platform.split("/")
    found: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": sha256_digest(raw),
        "size": len(raw),
        "platform": {"os": os_name, "architecture": architecture},
    }
    return {**found, "annotations": annotations} if annotations else found


def multi_arch(registry: FakeRegistry, *children: dict[str, Any]) -> str:
    return registry.add(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(children)}).encode()
    )


def ecr_expecting(*scans: tuple[str, dict[str, Any]]) -> tuple[Any, Stubber]:
    """DescribeImageScanFindings answering each (digest, response) in turn, and only for that digest."""
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    for digest, response in scans:
        expected = {"repositoryName": "app", "imageId": {"imageDigest": digest}, "maxResults": 1000}
        stub.add_response("describe_image_scan_findings", response, expected)
    return client, stub


def test_an_index_is_scanned_per_platform_and_the_platform_that_blocks_is_named() -> None:
    # Given a buildx-style index: amd64 and arm64 images and the attestation manifest BuildKit adds for amd64
    registry = FakeRegistry(referrers_api=False)
    amd64, arm64, attestation = image_manifest("amd64"), image_manifest("arm64"), image_manifest("provenance")
    for raw in (amd64, arm64, attestation):
        registry.add(raw)
    index = multi_arch(
        registry,
        entry(amd64, "linux/amd64"),
        entry(arm64, "linux/arm64"),
        entry(
            attestation,
            "unknown/unknown",
            **{
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": sha256_digest(amd64),
            },
        ),
    )
    # And ECR's scans: amd64 clean, arm64 with a CRITICAL finding (asked by platform digest, never the index)
    ecr, stub = ecr_expecting((sha256_digest(amd64), CLEAN), (sha256_digest(arm64), CRITICAL))
    # When the index is gated
    with stub:
        decision = gate_image(GATES, "app", index, ecr=ecr, registry=registry)["prod"]  # type: ignore[arg-type]
    # Then exactly the two platform images were read, and the block names arm64 only
    stub.assert_no_pending_responses()
    assert decision.verdict == "block"
    assert decision.reason == "linux/arm64: 1 CRITICAL finding: CVE-2026-1234"


def test_an_index_waits_while_one_platform_scan_is_not_there_yet() -> None:
    # Given an index whose amd64 scan is clean and whose arm64 scan is not found yet (right after the push)
    registry = FakeRegistry(referrers_api=False)
    amd64, arm64 = image_manifest("amd64"), image_manifest("arm64")
    registry.add(amd64)
    registry.add(arm64)
    index = multi_arch(registry, entry(amd64, "linux/amd64"), entry(arm64, "linux/arm64"))
    ecr, stub = ecr_expecting((sha256_digest(amd64), CLEAN))
    stub.add_client_error("describe_image_scan_findings", "ScanNotFoundException", "no scan")
    # When gated / Then it waits, naming the platform it waits for
    with stub:
        decision = gate_image(GATES, "app", index, ecr=ecr, registry=registry)["prod"]  # type: ignore[arg-type]
    assert (decision.verdict, decision.reason) == (
        "wait",
        "linux/arm64: scan not found yet (ScanNotFoundException); waited 0 of 30 min",
    )


def test_an_index_of_attestations_only_has_nothing_scanned_and_blocks_by_default() -> None:
    # Given an index that lists only an attestation manifest / When gated
    registry = FakeRegistry(referrers_api=False)
    attestation = image_manifest("provenance")
    registry.add(attestation)
    index = multi_arch(registry, entry(attestation, "unknown/unknown"))
    ecr, stub = ecr_expecting()
    with stub:
        decision = gate_image(GATES, "app", index, ecr=ecr, registry=registry)["prod"]  # type: ignore[arg-type]
    # Then no scan is asked for, and it is blocked as having no result
    assert decision.verdict == "block"
    assert decision.reason.startswith("the index lists no platform image ECR scans")


@pytest.mark.parametrize("nested", [True, False])
def test_a_nested_or_oversized_index_fails_the_gate_with_its_reason(nested: bool) -> None:
    # Given an index listing another index, or more platform images than a look reads
    registry = FakeRegistry(referrers_api=False)
    children = [
        entry(image_manifest(str(i)), f"linux/arch{i}") for i in range(1 if nested else MAX_PLATFORMS + 1)
    ]
    if nested:
        children[0]["mediaType"] = OCI_INDEX
    index = multi_arch(registry, *children)
    ecr, stub = ecr_expecting()
    # When gated / Then the gate cannot decide (GateCheckFailed, failing its destinations closed), saying why
    with (
        stub,
        pytest.raises(GateCheckFailed, match="another index" if nested else f"at most {MAX_PLATFORMS}"),
    ):
        gate_image(GATES, "app", index, ecr=ecr, registry=registry)  # type: ignore[arg-type]
