"""One image through several gated rules: scan and signatures read once, a decision per rule."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from tests.unit.fake_signatures import DATA, PAYLOAD, FakeRegistry, cosign_manifest
from workflow.gates.image import gate_image
from workflow.models.policy import Gates
from workflow.registry.media import sha256_digest

DIGEST = sha256_digest((DATA / "cosign-valid.manifest.json").read_bytes())
KEY = (DATA / "cosign.pub").read_text()


def signed_registry() -> FakeRegistry:
    registry = FakeRegistry(referrers_api=False)
    registry.add(
        (DATA / "cosign-valid.manifest.json").read_bytes()
    )  # the signed image: a single-platform manifest
    registry.add(cosign_manifest(), tag=DIGEST.replace(":", "-") + ".sig", blob=PAYLOAD)
    return registry


def ecr_answering(*responses: dict[str, Any]) -> tuple[Any, Stubber]:
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    for response in responses:
        stub.add_response("describe_image_scan_findings", response)
    return client, stub


def test_two_rules_on_one_image_one_blocks_one_passes() -> None:
    # Given a signed image with one HIGH finding; rule "strict" blocks at HIGH, rule "signed" needs a signature
    scan = {
        "imageScanStatus": {"status": "COMPLETE"},
        "imageScanFindings": {
            "findings": [{"name": "CVE-2026-1", "severity": "HIGH"}],
            "findingSeverityCounts": {"HIGH": 1},
        },
    }
    ecr, stub = ecr_answering(scan)
    gates = {
        "strict": Gates.model_validate({"scan": {"block_at": "HIGH"}}),
        "signed": Gates.model_validate({"signature": {"cosign_keys": [KEY]}}),
    }
    # When the image is gated
    with stub:
        decisions = gate_image(gates, "app", DIGEST, ecr=ecr, registry=signed_registry())  # type: ignore[arg-type]
    # Then the scan was read once, "strict" blocks on the finding and "signed" passes on the signature
    stub.assert_no_pending_responses()
    assert decisions["strict"].verdict == "block"
    assert decisions["strict"].reason.startswith("1 HIGH finding: CVE-2026-1")
    assert decisions["signed"].verdict == "pass"


def test_a_failed_signature_blocks_even_while_the_scan_runs() -> None:
    # Given a scan in progress and an image signed by a key the rule does not trust
    ecr, stub = ecr_answering({"imageScanStatus": {"status": "IN_PROGRESS"}})
    other = (DATA / "cosign2.pub").read_text()
    gates = {
        "both": Gates.model_validate({"scan": {"block_at": "HIGH"}, "signature": {"cosign_keys": [other]}})
    }
    # When gated / Then it blocks at once on the signature instead of waiting for the scan
    with stub:
        decision = gate_image(gates, "app", DIGEST, ecr=ecr, registry=signed_registry())["both"]  # type: ignore[arg-type]
    assert decision.verdict == "block"
    assert decision.reason.startswith("no signature by a trusted identity")


def test_a_running_scan_waits_when_the_signature_passes() -> None:
    # Given a scan in progress and a trusted signature
    ecr, stub = ecr_answering({"imageScanStatus": {"status": "IN_PROGRESS"}})
    gates = {
        "both": Gates.model_validate({"scan": {"block_at": "HIGH"}, "signature": {"cosign_keys": [KEY]}})
    }
    # When gated / Then it waits
    with stub:
        decision = gate_image(gates, "app", DIGEST, ecr=ecr, registry=signed_registry())["both"]  # type: ignore[arg-type]
    assert (decision.verdict, decision.reason) == ("wait", "scan IN_PROGRESS; waited 0 of 30 min")
