"""ECR scan results (`DescribeImageScanFindings`, basic and enhanced) -> a Decision.

API: https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImageScanFindings.html
(paginated with nextToken, up to 1,000 findings a page; `findingSeverityCounts` counts every finding).
Enhanced (Amazon Inspector) findings are read in the documented shape, API_EnhancedImageScanFinding.html:
`severity`, `status` (Inspector's ACTIVE | SUPPRESSED | CLOSED), `title`, `findingArn` and
`packageVulnerabilityDetails` (API_PackageVulnerabilityDetails.html: `vulnerabilityId`, `vulnerablePackages`
with `name` and `version`, API_VulnerablePackage.html).

Right after a push ECR may answer ScanNotFoundException: scan on push has not started yet. That is "not yet"
(status NO_SCAN, waited for as a scan IN_PROGRESS is), and "no scan" only once the gate's wait is over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from workflow.core.exceptions import ImageNotFound
from workflow.gates.decision import Decision
from workflow.models.policy import SEVERITY_RANK, ScanGate

NO_SCAN = "NO_SCAN"  # ScanNotFoundException: no scan of the image (yet)
WAIT_STATUSES = frozenset({"IN_PROGRESS", "PENDING", NO_SCAN})
# ACTIVE is enhanced scanning's "scanned and monitored continuously": its findings are current.
RESULT_STATUSES = frozenset({"COMPLETE", "ACTIVE"})
PAGE_SIZE = 1000
LISTED = 5  # finding ids named in a reason


@dataclass(frozen=True)
class Finding:
    """One vulnerability: its id (usually a CVE), severity and the package it is in."""

    id: str
    severity: str
    package: str = ""
    active: bool = True

    def __str__(self) -> str:
        return f"{self.id} ({self.package})" if self.package else self.id


def read_scan_findings(
    ecr: Any, repository: str, digest: str, registry_id: str | None = None
) -> dict[str, Any]:
    """Every page of DescribeImageScanFindings for the image `digest`, merged into one response.

    An image with no scan (yet) gives status NO_SCAN; an image that does not exist raises ImageNotFound.
    """
    request: dict[str, Any] = {
        "repositoryName": repository,
        "imageId": {"imageDigest": digest},
        "maxResults": PAGE_SIZE,
    }
    if registry_id:
        request["registryId"] = registry_id
    merged: dict[str, Any] = {}
    findings: list[Any] = []
    enhanced: list[Any] = []
    try:
        while True:
            page = ecr.describe_image_scan_findings(**request)
            body = page.get("imageScanFindings") or {}
            findings.extend(body.get("findings") or [])
            enhanced.extend(body.get("enhancedFindings") or [])
            merged = {**page, "imageScanFindings": {**body}}
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "ScanNotFoundException":
            return {"imageScanStatus": {"status": NO_SCAN, "description": "ScanNotFoundException"}}
        if code == "ImageNotFoundException":
            raise ImageNotFound(f"{repository}@{digest} does not exist (DescribeImageScanFindings)") from None
        raise
    merged.pop("nextToken", None)
    merged.pop("ResponseMetadata", None)
    merged["imageScanFindings"].update(findings=findings, enhancedFindings=enhanced)
    return merged


def findings_of(response: Mapping[str, Any]) -> list[Finding]:
    """The basic and enhanced findings of a response, without duplicates."""
    body = response.get("imageScanFindings") or {}
    found: dict[tuple[str, str], Finding] = {}
    for item in body.get("findings") or []:
        attributes = {a.get("key"): a.get("value") for a in item.get("attributes") or []}
        package = " ".join(
            p for p in (attributes.get("package_name"), attributes.get("package_version")) if p
        )
        finding = Finding(
            str(item.get("name") or "unnamed"), str(item.get("severity") or "UNDEFINED"), package
        )
        found.setdefault((finding.id, finding.package), finding)
    for item in body.get("enhancedFindings") or []:
        details = item.get("packageVulnerabilityDetails") or {}
        package = ", ".join(
            " ".join(str(part) for part in (p.get("name"), p.get("version")) if part)
            for p in (details.get("vulnerablePackages") or [])[:LISTED]
            if isinstance(p, Mapping)
        )
        identifier = (
            details.get("vulnerabilityId") or item.get("title") or item.get("findingArn") or "unnamed"
        )
        active = item.get("status", "ACTIVE") == "ACTIVE"  # Inspector: ACTIVE | SUPPRESSED | CLOSED
        finding = Finding(str(identifier), str(item.get("severity") or "UNDEFINED"), package, active)
        found.setdefault((finding.id, finding.package), finding)
    return list(found.values())


def _completed(response: Mapping[str, Any]) -> str:
    when = (response.get("imageScanFindings") or {}).get("imageScanCompletedAt")
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    if not isinstance(when, datetime):
        return ""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return f"; scan completed {when.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def missing_result(gate: ScanGate, reason: str) -> Decision:
    """No scan result to decide on: block, or pass with `on_missing: allow`, saying why."""
    if gate.on_missing == "allow":
        return Decision.passed(f"{reason}; allowed (on_missing: allow)")
    return Decision.blocked(f"{reason}; blocked (on_missing: block)")


def _blocking_text(blocking: list[Finding], unlisted: Counter[str], gate: ScanGate) -> str:
    counts = Counter(f.severity for f in blocking) + unlisted
    severities = sorted(counts, key=lambda s: -SEVERITY_RANK[s])
    total = sum(counts.values())
    counted = " and ".join(f"{counts[s]} {s}" for s in severities)
    text = f"{counted} finding{'s' if total != 1 else ''}"
    if severities != [gate.block_at]:
        text += f" (blocking at {gate.block_at})"
    ordered = sorted(blocking, key=lambda f: (-SEVERITY_RANK[f.severity], f.id))
    named = ", ".join(map(str, ordered[:LISTED]))
    if len(ordered) > LISTED:
        named += f", and {len(ordered) - LISTED} more"
    if unlisted:
        named += (", " if named else "") + f"{sum(unlisted.values())} not listed by DescribeImageScanFindings"
    return f"{text}: {named}"


def _waiting(status: str, gate: ScanGate, waited_seconds: float) -> Decision:
    if waited_seconds < gate.wait_minutes * 60:
        what = "not found yet (ScanNotFoundException)" if status == NO_SCAN else status
        return Decision.waiting(f"scan {what}; waited {int(waited_seconds // 60)} of {gate.wait_minutes} min")
    if status == NO_SCAN:
        return missing_result(
            gate,
            f"no scan after waiting {gate.wait_minutes} min (ScanNotFoundException: is scan on push on "
            "for this repository, and does ECR scan this image type?)",
        )
    return missing_result(gate, f"scan still {status} after waiting {gate.wait_minutes} min")


def evaluate_scan(response: Mapping[str, Any], gate: ScanGate, waited_seconds: float = 0) -> Decision:
    """The scan gate's decision for one merged DescribeImageScanFindings response."""
    status_block = response.get("imageScanStatus") or {}
    status = str(status_block.get("status") or NO_SCAN)
    if status in WAIT_STATUSES:
        return _waiting(status, gate, waited_seconds)
    if status not in RESULT_STATUSES:
        description = status_block.get("description")
        return missing_result(
            gate, f"no scan result: {status}" + (f" ({description})" if description else "")
        )
    threshold = SEVERITY_RANK[gate.block_at]
    findings = findings_of(response)
    at_or_above = [f for f in findings if SEVERITY_RANK.get(f.severity, -1) >= threshold]
    blocking = [f for f in at_or_above if f.active and f.id not in gate.ignored_ids]
    listed = Counter(f.severity for f in at_or_above)
    counts = (response.get("imageScanFindings") or {}).get("findingSeverityCounts") or {}
    unlisted = Counter(
        {
            severity: int(count) - listed[severity]
            for severity, count in counts.items()
            if SEVERITY_RANK.get(severity, -1) >= threshold and int(count) > listed[severity]
        }
    )
    completed = _completed(response)
    if blocking or unlisted:
        return Decision.blocked(_blocking_text(blocking, unlisted, gate) + completed)
    ignored = sorted({f.id for f in at_or_above if f.id in gate.ignored_ids})
    accepted = f" ({len(ignored)} ignored: {', '.join(ignored)})" if ignored else ""
    return Decision.passed(f"no findings at or above {gate.block_at}{accepted}{completed}")
