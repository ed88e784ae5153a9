"""OCI distribution client for one registry host: manifests here, on top of blobs (`workflow.registry.blobs`)
and listings (`workflow.registry.listing`), each on one host's transport (`workflow.registry.transport`).

Manifests are fetched and put byte-exact and verified by digest; manifest PUTs are paced per registry
(`put_rate`). Every value the registry returns is checked (`workflow.registry.paths`) before it is used.
"""

from __future__ import annotations

import time
from typing import Any

from workflow.core.exceptions import (
    DestinationTagImmutable,
    DigestMismatch,
    ReferrerRefused,
    RegistryProtocolError,
    TagDeleteRefused,
)
from workflow.registry import paths
from workflow.registry.blobs import CONFIRM_DELAYS, Blobs
from workflow.registry.listing import Listings
from workflow.registry.media import ACCEPT, Manifest, compute_digest, parse_manifest
from workflow.registry.pacing import TokenBucket, bucket_for
from workflow.registry.retry import TransientError
from workflow.registry.transport import discard

MAX_MANIFEST_BYTES = 4 << 20
CONCURRENT_WRITER_RETRIES = 2  # a PUT answered "blob unknown" while every blob is present


class RegistryClient(Blobs, Listings):
    """Talks the distribution API to one registry (manifests; blobs and listings inherited); thread-safe,
    safe to share between copies."""

    def __init__(self, registry: str, *, put_rate: float | None = None, **options: Any) -> None:
        super().__init__(registry, **options)
        self.put_bucket: TokenBucket | None = bucket_for(registry, put_rate) if put_rate else None

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest by tag or digest, verified; None when it does not exist."""
        return self.run(
            lambda: self._get_manifest(repository, reference),
            f"manifest {repository}:{reference} at {self.registry}",
        )

    def _get_manifest(self, repository: str, reference: str) -> Manifest | None:
        where = f"{self.registry}/{repository}"
        path = paths.manifest(repository, reference, where)
        with self.exchange(f"GET manifest {repository}:{reference}"):
            response = self.request("GET", path, repository, headers={"Accept": ACCEPT})
            if response.status == 404:
                discard(response)
                return None
            if response.status != 200:
                raise self.fail(response, f"GET manifest {repository}:{reference}")
            raw = self.read(response, MAX_MANIFEST_BYTES, f"manifest {repository}:{reference}")
        expected = reference if reference.startswith(("sha256:", "sha512:")) else None
        header = response.headers.get("Docker-Content-Digest")
        digest = compute_digest(raw, expected or header or "sha256:")
        if expected and digest != expected:
            raise DigestMismatch(f"manifest {expected} from {where} hashes to {digest}")
        if header and header.split(":")[0] == digest.split(":")[0] and header != digest:
            raise DigestMismatch(
                f"manifest {repository}:{reference} from {self.registry}: "
                f"Docker-Content-Digest {header} but the bytes hash to {digest}"
            )
        return parse_manifest(raw, response.headers.get("Content-Type"), digest, where)

    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest of the manifest under `reference`, or None when it does not exist."""
        where = f"{self.registry}/{repository}"
        path = paths.manifest(repository, reference, where)

        def attempt() -> tuple[bool, str | None]:
            with self.exchange(f"HEAD manifest {repository}:{reference}"):
                response = self.request("HEAD", path, repository, headers={"Accept": ACCEPT})
                if response.status not in (200, 404):
                    raise self.fail(response, f"HEAD manifest {repository}:{reference}")
                discard(response)
            digest = response.headers.get("Docker-Content-Digest")
            return response.status == 200, None if digest is None else paths.digest(digest, where)

        exists, digest = self.run(attempt, f"manifest {repository}:{reference} at {self.registry}")
        if exists and digest is None:
            manifest = self.get_manifest(repository, reference)
            return manifest.digest if manifest else None
        return digest

    def delete_tag(self, repository: str, tag: str) -> bool:
        """Remove `tag` alone (the distribution spec's DELETE of a manifest by tag); False when absent.

        A registry that deletes manifests only by digest (distribution 2.x answers 400 or 405) raises
        TagDeleteRefused: a digest is never deleted, which would take every tag of the image with it.
        """
        where = f"{self.registry}/{repository}"
        path = paths.manifest(repository, paths.tag(tag, where), where)

        def attempt() -> bool:
            with self.exchange(f"DELETE tag {repository}:{tag}"):
                response = self.request("DELETE", path, repository)
                if response.status in (200, 202, 404):
                    discard(response)
                    return response.status != 404
                if response.status in (400, 405):
                    detail = self.error_detail(response)
                    raise TagDeleteRefused(
                        f"{where}:{tag}: the registry does not delete tags (HTTP {response.status}"
                        + (f": {detail})" if detail else ")")
                    )
                raise self.fail(response, f"DELETE tag {repository}:{tag}")

        return self.run(attempt, f"tag {repository}:{tag} at {self.registry}")

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> bool:
        """Put `manifest` byte-exact under a tag or its digest; True when the registry reports OCI-Subject."""
        where = f"{self.registry}/{repository}"
        path = paths.manifest(repository, reference, where)
        what = f"manifest {manifest.digest} to {where}:{reference}"

        def attempt() -> bool | None:
            if self.put_bucket:
                self.put_bucket.acquire(what, self.bounds.deadline)
            with self.exchange(f"PUT manifest {repository}:{reference}"):
                try:
                    response = self.request(
                        "PUT",
                        path,
                        repository,
                        headers={"Content-Type": manifest.media_type},
                        body=manifest.raw,
                    )
                except TransientError as exc:
                    if self.put_bucket and exc.retry_after is not None:
                        self.put_bucket.hold(exc.retry_after)
                    raise
                if response.status in (200, 201, 202, 204):
                    discard(response)
                    returned = response.headers.get("Docker-Content-Digest")
                    if (
                        returned
                        and returned.split(":")[0] == manifest.digest.split(":")[0]
                        and returned != manifest.digest
                    ):
                        raise DigestMismatch(f"{where}: manifest {manifest.digest} was stored as {returned}")
                    return bool(response.headers.get("OCI-Subject"))
                detail = self.error_detail(response)
            if response.status == 400 and "TAG_INVALID" in detail and "immutable" in detail.lower():
                # ECR refuses even the same manifest again under an immutable tag: that is not a failure
                # (a duplicate event, or two runs racing).
                current = self.head_manifest(repository, reference)
                if current == manifest.digest:
                    return False
                raise DestinationTagImmutable(
                    f"{where}:{reference} is immutable and points at "
                    f"{current or 'another digest'}, not {manifest.digest}"
                )
            if response.status == 405 and manifest.subject is not None:
                # ECR refuses some OCI 1.1 referrer manifests (a `subject` and an `artifactType`) with 405
                # (aws/containers-roadmap#2783): the referrer cannot be put there, whatever is retried.
                raise ReferrerRefused(f"{what}: HTTP 405" + (f" ({detail})" if detail else ""))
            if response.status == 400 and ("BLOB_UNKNOWN" in detail or "MANIFEST_UNKNOWN" in detail):
                self._confirm_referenced(repository, manifest, detail)
                return None  # every blob is there: another writer raced this PUT; put again
            error = self.fail(response, f"PUT manifest {repository}:{reference}", detail)
            if isinstance(error, TransientError) and self.put_bucket:
                self.put_bucket.hold(self.retry.delay(1, error.retry_after))
            raise error

        for _ in range(CONCURRENT_WRITER_RETRIES + 1):
            result = self.run(attempt, what)
            if result is not None:
                return result
        raise RegistryProtocolError(
            f"{what}: the registry still says a referenced blob is unknown, though every one is present"
        )

    def _confirm_referenced(self, repository: str, manifest: Manifest, detail: str) -> None:
        """Return once every blob and child `manifest` names is present (a few tries); else raise."""
        for delay in CONFIRM_DELAYS:
            time.sleep(delay)
            missing = [b.digest for b in manifest.blobs if not self.blob_exists(repository, b.digest)]
            missing += [
                c.digest for c in manifest.children if self.head_manifest(repository, c.digest) != c.digest
            ]
            if not missing:
                return
        raise RegistryProtocolError(
            f"{self.registry}/{repository}: PUT manifest {manifest.digest} refused ({detail}); "
            f"{missing[0]} is absent"
        )
