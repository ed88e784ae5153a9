"""Scan results in the local runtime: the one fake behind ECR's `DescribeImageScanFindings`.

Production code reads scan results with `ecr.describe_image_scan_findings` (workflow/gates/scan.py), and
so does every component here: boto3 -> moto's server -> this fake. moto 5.2.5 alone does not do: found by
trying it, it answers only for images pushed to its own ECR backend (the local runtime's images are in
the registries), raises ScanNotFoundException until `StartImageScan` ran that day, and a scripted result
(its `scan-finding-results` API) sticks once read, so a scan cannot be IN_PROGRESS and later COMPLETE.

`ScanResults` holds, per repository and manifest digest, the responses to give: each call answers the
next one and the last repeats (so `in_progress(), complete(...)` is a scan that completes between the
first and second look). An image with no scripted result raises ScanNotFoundException, as ECR does for
an image never scanned. Everything comes back in one page (no `nextToken`). `applied(results)` replaces
moto's `ECRBackend.describe_image_scan_findings` for the duration of the context; nothing else changes.

It scans as ECR does (workflow/gates/platforms.py has the sources): the runtime tells it of each push
(`pushed`); the platform images of a pushed index are scanned, the index never is (ScanNotFoundException,
and scripting one is refused); and a pushed image's scan is not found for the first `not_found_seconds`
after its push, by `clock` (ECR answers ScanNotFoundException right after a push, before scan on push ran).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from moto.ecr.exceptions import ScanNotFoundException
from moto.ecr.models import ECRBackend

from workflow.local.images import Image


def finding(cve: str, severity: str, package: str = "", version: str = "") -> dict[str, Any]:
    """One basic-scan finding as DescribeImageScanFindings lists it."""
    attributes = [
        {"key": key, "value": value}
        for key, value in (("package_name", package), ("package_version", version))
        if value
    ]
    return {
        "name": cve,
        "uri": f"https://nvd.nist.gov/vuln/detail/{cve}",
        "severity": severity,
        "attributes": attributes,
    }


def complete(
    findings: list[dict[str, Any]] | None = None, completed_at: datetime | None = None
) -> dict[str, Any]:
    """A COMPLETE scan with these findings (none: a clean image) and the counts ECR gives with them."""
    findings = findings or []
    counts: dict[str, int] = {}
    for item in findings:
        counts[item["severity"]] = counts.get(item["severity"], 0) + 1
    when = completed_at or datetime.now(UTC)
    return {
        "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
        "imageScanFindings": {
            "imageScanCompletedAt": when.timestamp(),
            "vulnerabilitySourceUpdatedAt": when.timestamp(),
            "findings": findings,
            "findingSeverityCounts": counts,
        },
    }


def status(name: str, description: str = "") -> dict[str, Any]:
    """A scan without findings in this status: IN_PROGRESS, PENDING, FAILED, UNSUPPORTED_IMAGE, ..."""
    return {"imageScanStatus": {"status": name, "description": description or f"The scan is {name}."}}


def in_progress() -> dict[str, Any]:
    """A scan that has not completed yet."""
    return status("IN_PROGRESS", "The scan is in progress.")


class ScanResults:
    """Scripted DescribeImageScanFindings answers per (repository, digest); thread-safe (Map iterations)."""

    def __init__(self, not_found_seconds: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.not_found_seconds = not_found_seconds
        self.clock = clock
        self._scripts: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._calls: dict[tuple[str, str], int] = {}
        self._pushed: dict[tuple[str, str], float] = {}
        self._indexes: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def pushed(self, repository: str, image: Image) -> None:
        """A push: its platform images (or the image itself) are scanned from `not_found_seconds` on; an index never."""
        now = self.clock()
        with self._lock:
            if image.manifests:
                self._indexes.add((repository, image.digest))
            for manifest in image.manifests or [image.top]:
                self._pushed[(repository, manifest.digest)] = now

    def set(self, repository: str, digest: str, *responses: dict[str, Any]) -> None:
        """Answer for `repository@digest` with `responses` in turn, the last one from then on."""
        if not responses:
            raise ValueError("set() needs at least one response (complete(), in_progress(), status(...))")
        with self._lock:
            if (repository, digest) in self._indexes:
                raise ValueError(
                    f"{repository}@{digest} is an index: ECR scans its platform images, not it (set_image)"
                )
            self._scripts[(repository, digest)] = list(responses)
            self._calls[(repository, digest)] = 0

    def set_image(self, repository: str, image: Image, *responses: dict[str, Any]) -> None:
        """The same script for every platform image of `image` (the image itself when it is one)."""
        for manifest in image.manifests or [image.top]:
            self.set(repository, manifest.digest, *responses)

    def calls(self, repository: str, digest: str) -> int:
        """How many times the scripted scan of `repository@digest` was answered (not counting "not found")."""
        with self._lock:
            return self._calls.get((repository, digest), 0)

    def _not_found(self, key: tuple[str, str]) -> bool:
        pushed = self._pushed.get(key)
        too_soon = pushed is not None and self.clock() - pushed < self.not_found_seconds
        return key in self._indexes or too_soon or key not in self._scripts

    def answer(self, registry_id: str, repository: str, image_id: dict[str, Any]) -> dict[str, Any]:
        """The response for one call, shaped as ECR's (registryId, repositoryName, imageId and the script)."""
        digest = str(image_id.get("imageDigest") or "")
        key = (repository, digest)
        with self._lock:
            if self._not_found(key):
                raise ScanNotFoundException(
                    image_id=f"{{imageDigest:'{digest or 'null'}', imageTag:'null'}}",
                    repository_name=repository,
                    registry_id=registry_id,
                )
            script = self._scripts[key]
            index = min(self._calls[key], len(script) - 1)
            self._calls[key] += 1
        return {
            "registryId": registry_id,
            "repositoryName": repository,
            "imageId": {"imageDigest": digest},
            **script[index],
        }


@contextlib.contextmanager
def applied(results: ScanResults) -> Iterator[ScanResults]:
    """Make moto's DescribeImageScanFindings answer from `results` while the context lasts."""

    def describe_image_scan_findings(
        backend: ECRBackend, registry_id: str | None, repository_name: str, image_id: dict[str, Any]
    ) -> dict[str, Any]:
        return results.answer(registry_id or backend.account_id, repository_name, image_id)

    with mock.patch.object(ECRBackend, "describe_image_scan_findings", describe_image_scan_findings):
        yield results
