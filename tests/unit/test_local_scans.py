"""The local runtime's scan fake: scripted DescribeImageScanFindings answers read by the production reader."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from workflow.gates.scan import NO_SCAN, evaluate_scan, read_scan_findings
from workflow.local.images import build_image
from workflow.local.scans import ScanResults, applied, complete, finding, in_progress, status
from workflow.models.policy import ScanGate

DIGEST = "sha256:" + "cd" * 32
COMPLETED = datetime(2026, 12, 1, 10, 2, tzinfo=UTC)


@pytest.fixture
def ecr():
    with mock_aws():
        yield boto3.client("ecr", region_name="us-east-1")


def test_a_scan_in_progress_then_complete_reads_as_ecr_answers(ecr) -> None:
    """Given a scan scripted IN_PROGRESS then COMPLETE with a CRITICAL finding,
    When the production reader reads it twice through boto3 and moto,
    Then the first look waits and the second blocks naming the finding and when the scan completed."""
    results = ScanResults()
    critical = finding("CVE-2026-1234", "CRITICAL", "openssl", "3.0.2")
    results.set("app", DIGEST, in_progress(), complete([critical], completed_at=COMPLETED))
    gate = ScanGate(block_at="CRITICAL", wait_minutes=5)
    with applied(results):
        first = read_scan_findings(ecr, "app", DIGEST, "111111111111")
        second = read_scan_findings(ecr, "app", DIGEST, "111111111111")
        third = read_scan_findings(ecr, "app", DIGEST, "111111111111")
    assert first["imageScanStatus"]["status"] == "IN_PROGRESS"
    assert evaluate_scan(first, gate).verdict == "wait"
    decision = evaluate_scan(second, gate)
    assert decision.verdict == "block"
    assert decision.reason == (
        "1 CRITICAL finding: CVE-2026-1234 (openssl 3.0.2); scan completed 2026-12-01T10:02Z"
    )
    assert third["imageScanFindings"]["findingSeverityCounts"] == {"CRITICAL": 1}
    assert results.calls("app", DIGEST) == 3


def test_an_image_without_a_script_was_never_scanned(ecr) -> None:
    """Given no scripted scan for an image,
    When it is read, Then the reader sees ECR's ScanNotFoundException as NO_SCAN: waited for, then blocked."""
    with applied(ScanResults()):
        response = read_scan_findings(ecr, "app", DIGEST)
    assert response["imageScanStatus"]["status"] == NO_SCAN
    assert evaluate_scan(response, ScanGate(block_at="HIGH")).verdict == "wait"
    assert evaluate_scan(response, ScanGate(block_at="HIGH", wait_minutes=0)).verdict == "block"


def test_a_failed_scan_is_no_result(ecr) -> None:
    """Given a scan scripted UNSUPPORTED_IMAGE, When it is read, Then the gate has no result and says why."""
    results = ScanResults()
    results.set("app", DIGEST, status("UNSUPPORTED_IMAGE", "The operating system is not supported."))
    with applied(results):
        response = read_scan_findings(ecr, "app", DIGEST)
    decision = evaluate_scan(response, ScanGate(block_at="HIGH", on_missing="allow"))
    assert decision.verdict == "pass"
    assert "UNSUPPORTED_IMAGE (The operating system is not supported.)" in decision.reason


def test_outside_the_context_moto_answers_again(ecr) -> None:
    """Given the fake was applied and left, When a scan is read, Then moto's own answer comes back."""
    with applied(ScanResults()):
        pass
    with pytest.raises(ClientError, match="RepositoryNotFoundException"):
        ecr.describe_image_scan_findings(repositoryName="app", imageId={"imageDigest": DIGEST})


def test_a_script_needs_a_response() -> None:
    """Given no responses, When a script is set, Then it is refused in one line."""
    with pytest.raises(ValueError, match="at least one response"):
        ScanResults().set("app", DIGEST)


class Clock:
    """Seconds that a test moves on by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_pushed_index_is_never_scanned_and_its_platform_images_only_after_a_while(ecr) -> None:
    """Given a two-platform image pushed, every platform scripted clean, and scans not found for 5 s after a push,
    When its scans are read right away and 5 s later,
    Then the index is never found, its platform images are not found at first and then are, as ECR answers."""
    clock = Clock()
    results = ScanResults(not_found_seconds=5, clock=clock)
    image = build_image("fake", ("linux/amd64", "linux/arm64"), layer_sizes=(16,))
    results.pushed("app", image)
    results.set_image("app", image, complete([]))
    amd64, arm64 = (m.digest for m in image.manifests)
    with applied(results):
        early = [
            read_scan_findings(ecr, "app", d)["imageScanStatus"]["status"] for d in (image.digest, amd64)
        ]
        clock.now += 5
        late = [read_scan_findings(ecr, "app", d)["imageScanStatus"]["status"] for d in (image.digest, arm64)]
    assert early == [NO_SCAN, NO_SCAN]
    assert late == [NO_SCAN, "COMPLETE"]
    assert (results.calls("app", amd64), results.calls("app", arm64)) == (0, 1)


def test_scripting_a_scan_of_an_index_is_refused() -> None:
    """Given a pushed index, When a scan is scripted for the index digest, Then it is refused: ECR never scans it."""
    results = ScanResults()
    image = build_image("fake", ("linux/amd64", "linux/arm64"), layer_sizes=(16,))
    results.pushed("app", image)
    with pytest.raises(ValueError, match="is an index: ECR scans its platform images"):
        results.set("app", image.digest, complete([]))
