"""The scan gate: DescribeImageScanFindings (basic and enhanced findings, counts, statuses) -> a Decision.

Responses are checked against the ECR API model by botocore's Stubber, so their shape is the real one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from workflow.core.exceptions import ImageNotFound
from workflow.gates.scan import NO_SCAN, evaluate_scan, read_scan_findings
from workflow.models.policy import ScanGate

DIGEST = "sha256:" + "ab" * 32
COMPLETED = datetime(2026, 12, 1, 10, 2, 31, tzinfo=UTC)


def basic(name: str, severity: str, package: str = "", version: str = "") -> dict[str, Any]:
    attributes = [{"key": "package_name", "value": package}, {"key": "package_version", "value": version}]
    return {"name": name, "severity": severity, "attributes": attributes if package else []}


def enhanced(
    vulnerability: str, severity: str, package: str, version: str, status: str = "ACTIVE"
) -> dict[str, Any]:
    return {
        "severity": severity,
        "status": status,
        "packageVulnerabilityDetails": {
            "vulnerabilityId": vulnerability,
            "vulnerablePackages": [{"name": package, "version": version}],
        },
    }


def response(
    status: str = "COMPLETE",
    findings: list[dict[str, Any]] | None = None,
    enhanced_findings: list[dict[str, Any]] | None = None,
    counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"imageScanCompletedAt": COMPLETED}
    if findings is not None:
        body["findings"] = findings
    if enhanced_findings is not None:
        body["enhancedFindings"] = enhanced_findings
    if counts is not None:
        body["findingSeverityCounts"] = counts
    return {"imageScanStatus": {"status": status}, "imageScanFindings": body}


def test_critical_findings_block_with_an_actionable_reason() -> None:
    # Given two CRITICAL findings (basic scanning) and a gate blocking at CRITICAL
    scan = response(
        findings=[
            basic("CVE-2026-1234", "CRITICAL", "openssl", "3.0.2"),
            basic("CVE-2026-9", "CRITICAL", "zlib", "1.2"),
        ],
        counts={"CRITICAL": 2},
    )
    # When evaluated
    decision = evaluate_scan(scan, ScanGate(block_at="CRITICAL"))
    # Then it blocks, naming the findings, their packages and when the scan completed
    assert decision.verdict == "block"
    assert decision.reason == (
        "2 CRITICAL findings: CVE-2026-1234 (openssl 3.0.2), CVE-2026-9 (zlib 1.2); scan completed 2026-12-01T10:02Z"
    )


def test_findings_below_the_threshold_pass() -> None:
    # Given only MEDIUM and LOW findings and a gate at HIGH
    scan = response(
        findings=[basic("CVE-1", "MEDIUM"), basic("CVE-2", "LOW")], counts={"MEDIUM": 1, "LOW": 1}
    )
    # When evaluated / Then it passes
    decision = evaluate_scan(scan, ScanGate(block_at="HIGH"))
    assert decision.verdict == "pass"
    assert decision.reason == "no findings at or above HIGH; scan completed 2026-12-01T10:02Z"


def test_enhanced_findings_of_several_severities_block_at_high() -> None:
    # Given Inspector findings: one CRITICAL, one HIGH, one suppressed HIGH and one LOW
    scan = response(
        enhanced_findings=[
            enhanced("CVE-2026-7", "HIGH", "curl", "8.0"),
            enhanced("CVE-2026-8", "CRITICAL", "glibc", "2.36"),
            enhanced("CVE-2026-5", "HIGH", "bash", "5.2", status="SUPPRESSED"),
            enhanced("CVE-2026-6", "LOW", "tar", "1.34"),
        ],
        counts={"CRITICAL": 1, "HIGH": 2, "LOW": 1},
    )
    # When evaluated at HIGH
    decision = evaluate_scan(scan, ScanGate(block_at="HIGH"))
    # Then the CRITICAL and the active HIGH block, most severe first; the suppressed one does not
    assert decision.verdict == "block"
    assert decision.reason.startswith(
        "1 CRITICAL and 1 HIGH findings (blocking at HIGH): CVE-2026-8 (glibc 2.36), CVE-2026-7 (curl 8.0)"
    )


def test_an_ignored_finding_does_not_block_and_is_named() -> None:
    # Given one CRITICAL finding that the rule accepts as a risk
    scan = response(findings=[basic("CVE-2026-1234", "CRITICAL", "openssl", "3.0.2")], counts={"CRITICAL": 1})
    gate = ScanGate(block_at="HIGH", ignore=[{"id": "CVE-2026-1234", "reason": "not reachable"}])  # type: ignore[list-item]
    # When evaluated / Then it passes and says what was ignored
    decision = evaluate_scan(scan, gate)
    assert decision.verdict == "pass"
    assert decision.reason.startswith("no findings at or above HIGH (1 ignored: CVE-2026-1234)")


def test_counts_without_listed_findings_still_block() -> None:
    # Given severity counts that report a HIGH finding the list does not carry
    scan = response(findings=[], counts={"HIGH": 1})
    # When evaluated / Then it blocks, saying the finding was not listed
    decision = evaluate_scan(scan, ScanGate(block_at="HIGH"))
    assert decision.verdict == "block"
    assert "1 HIGH finding: 1 not listed by DescribeImageScanFindings" in decision.reason


def test_many_findings_are_cut_to_five_names() -> None:
    # Given eight CRITICAL findings
    scan = response(findings=[basic(f"CVE-2026-{n}", "CRITICAL") for n in range(8)], counts={"CRITICAL": 8})
    # When evaluated / Then five are named and the rest counted
    reason = evaluate_scan(scan, ScanGate(block_at="LOW")).reason
    assert reason.startswith("8 CRITICAL findings (blocking at LOW): CVE-2026-0, CVE-2026-1, CVE-2026-2")
    assert ", and 3 more;" in reason


@pytest.mark.parametrize("status", ["IN_PROGRESS", "PENDING"])
def test_a_running_scan_waits_then_blocks_after_the_wait(status: str) -> None:
    # Given a scan still running and a gate that waits 10 minutes
    gate = ScanGate(block_at="HIGH", wait_minutes=10)
    # When evaluated after 3 minutes / Then it waits
    early = evaluate_scan(response(status), gate, waited_seconds=180)
    assert (early.verdict, early.reason) == ("wait", f"scan {status}; waited 3 of 10 min")
    # When evaluated after the whole wait / Then it is "no result": blocked by default
    late = evaluate_scan(response(status), gate, waited_seconds=600)
    assert (late.verdict, late.reason) == (
        "block",
        f"scan still {status} after waiting 10 min; blocked (on_missing: block)",
    )


@pytest.mark.parametrize(
    "status", ["FAILED", "UNSUPPORTED_IMAGE", "SCAN_ELIGIBILITY_EXPIRED", "FINDINGS_UNAVAILABLE"]
)
def test_no_scan_result_blocks_or_passes_by_on_missing(status: str) -> None:
    # Given a scan that gave no result
    scan = {"imageScanStatus": {"status": status, "description": "why"}}
    # When evaluated with the default and with on_missing: allow
    blocked = evaluate_scan(scan, ScanGate(block_at="HIGH"))
    allowed = evaluate_scan(scan, ScanGate(block_at="HIGH", on_missing="allow"))
    # Then the default blocks and allow passes, both saying why
    assert (blocked.verdict, blocked.reason) == (
        "block",
        f"no scan result: {status} (why); blocked (on_missing: block)",
    )
    assert (allowed.verdict, allowed.reason) == (
        "pass",
        f"no scan result: {status} (why); allowed (on_missing: allow)",
    )


def test_a_scan_not_found_right_after_the_push_is_waited_for_then_is_no_scan() -> None:
    # Given ECR answering ScanNotFoundException (read as NO_SCAN), as it does right after a push, and a gate
    # that waits 10 minutes
    scan = {"imageScanStatus": {"status": NO_SCAN, "description": "ScanNotFoundException"}}
    gate = ScanGate(block_at="HIGH", wait_minutes=10)
    # When evaluated after 2 minutes / Then it is "not yet": the gate waits
    early = evaluate_scan(scan, gate, waited_seconds=120)
    assert (early.verdict, early.reason) == (
        "wait",
        "scan not found yet (ScanNotFoundException); waited 2 of 10 min",
    )
    # When evaluated after the whole wait / Then there is no scan: blocked by default, saying what to check
    late = evaluate_scan(scan, gate, waited_seconds=600)
    assert late.verdict == "block"
    assert late.reason == (
        "no scan after waiting 10 min (ScanNotFoundException: is scan on push on for this repository, "
        "and does ECR scan this image type?); blocked (on_missing: block)"
    )
    # And with on_missing: allow it passes then, saying so
    allowed = evaluate_scan(scan, ScanGate(block_at="HIGH", wait_minutes=10, on_missing="allow"), 600)
    assert allowed.verdict == "pass"
    assert allowed.reason.endswith("allowed (on_missing: allow)")


def test_an_enhanced_finding_in_its_documented_shape_names_every_vulnerable_package() -> None:
    # Given an Inspector finding shaped as ECR documents EnhancedImageScanFinding (Stubber checks the shape
    # against the ECR API model), its vulnerability in two packages
    client, stub = _stubbed_ecr()
    finding = {
        "awsAccountId": "111111111111",
        "description": "A flaw in the TLS handshake.",
        "findingArn": "arn:aws:inspector2:us-east-1:111111111111:finding/0123456789abcdef",
        "firstObservedAt": COMPLETED,
        "lastObservedAt": COMPLETED,
        "packageVulnerabilityDetails": {
            "source": "NVD",
            "vulnerabilityId": "CVE-2026-9",
            "vendorSeverity": "CRITICAL",
            "vulnerablePackages": [
                {"name": "openssl", "version": "3.0.2", "packageManager": "OS", "fixedInVersion": "3.0.3"},
                {"name": "libssl3", "version": "3.0.2", "packageManager": "OS", "fixedInVersion": "3.0.3"},
            ],
        },
        "score": 9.8,
        "severity": "CRITICAL",
        "status": "ACTIVE",
        "title": "CVE-2026-9 - openssl, libssl3",
        "type": "PACKAGE_VULNERABILITY",
        "updatedAt": COMPLETED,
        "fixAvailable": "YES",
        "exploitAvailable": "NO",
    }
    page = {
        "imageScanStatus": {"status": "ACTIVE", "description": "Continuous scan is selected for image."},
        "imageScanFindings": {
            "imageScanCompletedAt": COMPLETED,
            "enhancedFindings": [finding],
            "findingSeverityCounts": {"CRITICAL": 1},
        },
    }
    stub.add_response("describe_image_scan_findings", page)
    # When read and evaluated at CRITICAL
    with stub:
        decision = evaluate_scan(read_scan_findings(client, "app", DIGEST), ScanGate(block_at="CRITICAL"))
    # Then it blocks naming the vulnerability and both packages it is in
    assert decision.verdict == "block"
    assert decision.reason.startswith("1 CRITICAL finding: CVE-2026-9 (openssl 3.0.2, libssl3 3.0.2)")


def _stubbed_ecr() -> tuple[Any, Stubber]:
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_reading_follows_every_page_by_digest() -> None:
    # Given a scan whose findings come in two pages
    client, stub = _stubbed_ecr()
    request = {
        "repositoryName": "app",
        "imageId": {"imageDigest": DIGEST},
        "maxResults": 1000,
        "registryId": "111111111111",
    }
    first = response(findings=[basic("CVE-1", "HIGH")], counts={"HIGH": 2})
    second = response(findings=[basic("CVE-2", "HIGH")], counts={"HIGH": 2})
    stub.add_response("describe_image_scan_findings", {**first, "nextToken": "page-2"}, request)
    stub.add_response("describe_image_scan_findings", second, {**request, "nextToken": "page-2"})
    # When read
    with stub:
        merged = read_scan_findings(client, "app", DIGEST, registry_id="111111111111")
    # Then both pages' findings are there, once, and the gate sees both
    stub.assert_no_pending_responses()
    assert [f["name"] for f in merged["imageScanFindings"]["findings"]] == ["CVE-1", "CVE-2"]
    assert "nextToken" not in merged
    assert evaluate_scan(merged, ScanGate(block_at="HIGH")).reason.startswith("2 HIGH findings: CVE-1, CVE-2")


def test_an_image_never_scanned_is_no_result_and_a_missing_image_is_named() -> None:
    # Given ECR answering ScanNotFoundException, then ImageNotFoundException
    client, stub = _stubbed_ecr()
    stub.add_client_error("describe_image_scan_findings", "ScanNotFoundException", "no scan")
    stub.add_client_error("describe_image_scan_findings", "ImageNotFoundException", "no image")
    with stub:
        # When read / Then the first is status NO_SCAN and the second raises ImageNotFound
        assert read_scan_findings(client, "app", DIGEST)["imageScanStatus"]["status"] == NO_SCAN
        with pytest.raises(ImageNotFound, match=f"app@{DIGEST} does not exist"):
            read_scan_findings(client, "app", DIGEST)
