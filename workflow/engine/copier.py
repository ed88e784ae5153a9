"""Copy engine: byte-exact, multi-arch, streaming registry-to-registry image copy.

`copy_image()` copies every platform of an image (Docker v2 schema 2 and OCI, single manifests and
indexes), with several blobs in flight, skipping blobs the destination has, verifying every blob and
manifest by digest, and putting each manifest only once all it references is present. Foreign layers
(Windows base layers), which no registry holds, stay where their `urls` say: only the manifest naming
them is copied. Referrers (signatures, SBOMs, and their own referrers) follow through the OCI
referrers API, or the `sha256-<hex>[.*]` tag schema. A referrer the destination refuses with 405 (ECR, for
some OCI 1.1 referrers: aws/containers-roadmap#2783) is left out and named in the outcome
(`refused_referrers`, ReferrerRefused); the image and its other referrers are still copied.
`probe_destination()` answers whether a copy is needed and puts the tag alone when the digest is there.
A source image either cannot find is ImageArchived when ECR holds it in the archive storage class (its pull is
a 404, like an image that is not there: ECR user guide, "Archiving an image"), else ImageNotFound.
Either puts the destination tag only while the source tag still points at the digest copied: when a newer
push has moved it on, the newer push's own run replicates that, and this one is `superseded` (manifests
put by digest only), so the newest push of a tag always wins, whichever run ends last.
`copy_image()` returns a plain `CopyOutcome` and `probe_destination()` a plain `PrecheckResult`: nothing here
imports pydantic, so the copy job starts sooner and runs from its asset alone (workflow.core, workflow.registry
and workflow.engine).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from workflow.core.documents import load_json
from workflow.core.exceptions import (
    DestinationTagConflict,
    DestinationTagImmutable,
    DigestMismatch,
    ImageNotFound,
    InvalidReference,
    ReferrerRefused,
    RegistryProtocolError,
    ReplicationError,
)
from workflow.engine.blobs import BlobCopier, ProgressCallback, ProgressEvent
from workflow.registry.auth import ecr_host_parts
from workflow.registry.blobs import UploadMode
from workflow.registry.client import RegistryClient
from workflow.registry.deadline import Bounds
from workflow.registry.factory import make_client
from workflow.registry.media import OCI_INDEX, Manifest, parse_manifest, sha256_digest
from workflow.registry.reference import ImageReference, parse_reference
from workflow.registry.retry import RetryPolicy

__all__ = [
    "CopyOutcome",
    "PrecheckResult",
    "ProgressCallback",
    "ProgressEvent",
    "copy_image",
    "probe_destination",
]

DEFAULT_PARALLEL_BLOBS = 8
MAX_REFERRER_DEPTH = 4  # image <- SBOM <- signature is 2; a bound keeps a cycle or a deep chain finite
MAX_MANIFEST_DEPTH = 4  # index -> image is 2; an index of indexes 3
MAX_REFUSALS_NAMED = 10  # refused referrers named in the outcome (all are counted): the result stays small
REFUSAL_REASON_LIMIT = 300


@dataclass(frozen=True)
class CopyOutcome:
    """What one copy did: the fields of `workflow.models.payloads.CopyResult`, without pydantic."""

    action: Literal["copied", "tagged", "present", "superseded"]
    source: str
    destination: str
    source_digest: str
    destination_digest: str
    media_type: str
    platforms: list[str]
    blobs_copied: int
    blobs_skipped: int
    bytes_copied: int
    seconds: float
    referrers_copied: int
    finished_at: str  # ISO 8601 UTC: when the destination tag was put
    # Referrers the destination refused (HTTP 405): how many, and the first MAX_REFUSALS_NAMED as
    # {"digest", "artifact_type", "reason"}.
    referrers_refused: int = 0
    refused_referrers: list[dict[str, str | None]] = field(default_factory=list)
    # Of bytes_copied, those a relay moved inside the destination's Region from a seed (workflow/engine/seeds.py).
    bytes_in_region: int = 0
    seeded_from: str | None = None
    relay_seconds: float = 0.0  # how long the relay function ran (what Lambda bills for it)

    def to_json(self) -> str:
        """Compact JSON, as `CopyResult.model_dump_json()` writes it."""
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class PrecheckResult:
    """What the destination already has for one image, as `probe_destination()` finds it."""

    action: Literal["present", "tagged", "superseded", "copy-needed"]
    digest: str | None = None
    destination_digest: str | None = None


def _platform_of_config(raw: bytes) -> str | None:
    try:
        config = load_json(raw)
    except ValueError:
        return None
    if not isinstance(config, dict) or not config.get("os"):
        return None
    parts = (config.get("os"), config.get("architecture"), config.get("variant"))
    return "/".join(str(p) for p in parts if p)


class _Copier:
    """State of one copy: two clients, the blob workers and the referrer walk's memory."""

    def __init__(
        self,
        src: RegistryClient,
        dst: RegistryClient,
        src_ref: ImageReference,
        dst_ref: ImageReference,
        progress: ProgressCallback | None,
        max_parallel_blobs: int,
        upload_mode: UploadMode,
    ) -> None:
        self.src, self.dst, self.src_ref, self.dst_ref = src, dst, src_ref, dst_ref
        self.blobs = BlobCopier(
            src, dst, src_ref.repository, dst_ref.repository, progress, max_parallel_blobs, upload_mode
        )
        self.referrers_api = True
        self.source_tags: list[str] | None = None
        self.refused: list[dict[str, str | None]] = []
        self.refused_count = 0

    def close(self) -> None:
        """Stop the blob workers."""
        self.blobs.close()

    # Manifests

    def fetch_tree(self, manifest: Manifest, parents: tuple[str, ...] = ()) -> list[Manifest]:
        """`manifest` and every manifest below it, children before parents, each fetched and verified;
        RegistryProtocolError at once for nesting deeper than MAX_MANIFEST_DEPTH or a manifest under itself."""
        where = f"{self.src.registry}/{self.src_ref.repository}"
        parents = (*parents, manifest.digest)
        if manifest.children and len(parents) >= MAX_MANIFEST_DEPTH:
            raise RegistryProtocolError(
                f"{where}: manifest {parents[0]} nests indexes deeper than {MAX_MANIFEST_DEPTH} levels"
            )
        ordered: list[Manifest] = []
        for child in manifest.children:
            if child.digest in parents:
                raise RegistryProtocolError(f"{where}: manifest {child.digest} lists itself below it")
            fetched = self.src.get_manifest(self.src_ref.repository, child.digest)
            if fetched is None:
                raise ImageNotFound(
                    f"manifest {child.digest} listed by {manifest.digest} is missing from "
                    f"{self.src.registry}/{self.src_ref.repository}"
                )
            if len(fetched.raw) != child.size:
                raise DigestMismatch(
                    f"manifest {child.digest} is {len(fetched.raw)} bytes, index says {child.size}"
                )
            ordered.extend(self.fetch_tree(fetched, parents))
        ordered.append(manifest)
        return ordered

    def copy_tree(self, manifest: Manifest, reference: str) -> list[Manifest]:
        """Copy `manifest` with all it references, then put it under `reference` (a tag or its digest)."""
        tree = self.fetch_tree(manifest)
        blobs = list({b.digest: b for m in tree for b in m.blobs if not b.foreign}.values())
        self.blobs.copy_blobs(blobs)
        for item in tree[:-1]:
            self.dst.put_manifest(self.dst_ref.repository, item.digest, item)
            self.blobs.emit("manifest", item.digest, len(item.raw))
        self.dst.put_manifest(self.dst_ref.repository, reference, manifest)
        self.blobs.emit("manifest", manifest.digest, len(manifest.raw))
        return tree

    # Referrers

    def copy_referrers(self, subjects: list[str]) -> int:
        """Copy the referrers of each subject digest, then theirs (a signature on an SBOM), down to
        MAX_REFERRER_DEPTH levels; returns how many manifests were put.

        A referrer already at the destination is not copied again, but its own referrers are still
        looked for. A source without the referrers API says so on the first subject; from then on the
        API is not asked again; the source's tag list, for the tag schema, is fetched once.
        """
        copied = 0
        seen = set(subjects)
        level = subjects
        for _ in range(MAX_REFERRER_DEPTH):
            found: list[str] = []
            for subject in level:
                put, referrers = self._copy_referrers_of(subject)
                copied += put
                found.extend(d for d in referrers if d not in seen)
                seen.update(referrers)
            if not found:
                break
            level = found
        return copied

    def _copy_referrers_of(self, subject: str) -> tuple[int, list[str]]:
        """Copy the direct referrers of `subject`; returns (manifests put, digests of all its referrers).

        Both kinds are looked for: OCI 1.1 referrers through the API, and `sha256-<hex>.*` tags, which
        cosign writes by default even to registries with the API. When the API answered, the bare
        `sha256-<hex>` tag (a fallback index of what the API lists) is left to `_update_fallback_index`.
        """
        repo, src_repo = self.dst_ref.repository, self.src_ref.repository
        copied = 0
        found: list[str] = []
        listed = self.src.referrers(src_repo, subject) if self.referrers_api else None
        self.referrers_api = listed is not None
        for descriptor in listed or []:
            found.append(descriptor.digest)
            if self.dst.head_manifest(repo, descriptor.digest) == descriptor.digest:
                continue
            referrer = self.src.get_manifest(src_repo, descriptor.digest)
            if referrer is None or not self._put_referrer(referrer, referrer.digest):
                continue
            copied += 1
            self._update_fallback_index(subject, referrer)
        if self.source_tags is None:
            self.source_tags = self.src.list_tags(src_repo)
        prefix = subject.replace(":", "-")
        for tag in self.source_tags:
            if not tag.startswith(prefix + ".") and (tag != prefix or listed is not None):
                continue
            referrer = self.src.get_manifest(src_repo, tag)
            if referrer is None:
                continue
            found += [referrer.digest, *(c.digest for c in referrer.children)]
            if self.dst.head_manifest(repo, tag) != referrer.digest and self._put_referrer(referrer, tag):
                copied += 1
        return copied, found

    def _put_referrer(self, referrer: Manifest, reference: str) -> bool:
        """Copy one referrer; False when the destination refuses it (405), which is recorded, not raised."""
        try:
            self.copy_tree(referrer, reference)
        except ReferrerRefused as refusal:
            self.refused_count += 1
            if len(self.refused) < MAX_REFUSALS_NAMED:
                reason = str(refusal)
                self.refused.append(
                    {
                        "digest": referrer.digest,
                        "artifact_type": referrer.artifact_type,
                        "reason": reason if len(reason) <= REFUSAL_REASON_LIMIT else reason[:297] + "...",
                    }
                )
            return False
        return True

    def _update_fallback_index(self, subject: str, referrer: Manifest) -> None:
        """Record `referrer` in the destination's `sha256-<hex>` tag index (for registries without the API)."""
        if self.dst.referrers(self.dst_ref.repository, subject) is not None:
            return
        tag = subject.replace(":", "-")
        existing = self.dst.get_manifest(self.dst_ref.repository, tag)
        entries = [c.to_json() for c in existing.children] if existing and existing.is_index else []
        if any(e["digest"] == referrer.digest for e in entries):
            return
        entries.append(referrer.descriptor().to_json())
        raw = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, separators=(",", ":")
        ).encode()
        index = parse_manifest(raw, OCI_INDEX, sha256_digest(raw), str(self.dst_ref))
        self.dst.put_manifest(self.dst_ref.repository, tag, index)


def parse_destination(destination: str) -> ImageReference:
    """A destination reference: a tag or a digest, not both (InvalidReference otherwise)."""
    dst_ref = parse_reference(destination)
    if dst_ref.digest and dst_ref.tag:
        raise InvalidReference(f"destination {destination!r} must name a tag or a digest, not both")
    return dst_ref


def _resolve(
    source: str,
    destination: str,
    source_session: Any,
    destination_session: Any,
    insecure_registries: Collection[str],
    retry: RetryPolicy | None,
    pool_size: int,
    bounds: Bounds | None = None,
    put_rate: float | None = None,
) -> tuple[ImageReference, ImageReference, RegistryClient, RegistryClient]:
    src_ref, dst_ref = parse_reference(source), parse_destination(destination)
    src = make_client(
        src_ref.registry,
        session=source_session,
        insecure_registries=insecure_registries,
        retry=retry,
        pool_size=pool_size,
        bounds=bounds,
    )
    dst = make_client(
        dst_ref.registry,
        session=destination_session,
        insecure_registries=insecure_registries,
        push=True,
        retry=retry,
        pool_size=pool_size,
        bounds=bounds,
        put_rate=put_rate,
    )
    return src_ref, dst_ref, src, dst


def _check_mutable(dst_ref: ImageReference, session: Any, tag_digest: str | None, digest: str) -> None:
    """Raise DestinationTagImmutable early when ECR says the tag is immutable (by the repository's mode and
    its exclusion filters) and points elsewhere."""
    parts = ecr_host_parts(dst_ref.registry)
    if not parts or tag_digest is None or tag_digest == digest or not dst_ref.tag:
        return
    from workflow.engine.ecr import tag_mutability

    mutability = tag_mutability(session, parts[1], dst_ref.repository, registry_id=parts[0])
    if mutability is not None and mutability.immutable(dst_ref.tag):
        raise DestinationTagImmutable(f"{dst_ref} is immutable and points at {tag_digest}, not {digest}")


def _missing(src_ref: ImageReference, session: Any, source_ecr: tuple[str, str] | None) -> ReplicationError:
    """Why the source lacks `src_ref`: ImageArchived when ECR (the host's, or `source_ecr`'s account and Region,
    for a registry standing for one) holds it archived, else ImageNotFound."""
    registry = ecr_host_parts(src_ref.registry) or source_ecr
    if registry is None:
        return ImageNotFound(f"{src_ref} not found")
    from workflow.engine.ecr import missing_image

    if session is None:
        import boto3

        session = boto3.Session()
    client = session.client("ecr", region_name=registry[1])
    return missing_image(client, str(src_ref), src_ref.repository, src_ref.reference, registry_id=registry[0])


def _check_conflict(dst_ref: ImageReference, tag_digest: str | None, digest: str, replace_tag: bool) -> None:
    """Raise DestinationTagConflict, before anything is written, when the destination tag points at another
    digest and the rule refuses to replace it."""
    if not replace_tag and tag_digest is not None and tag_digest != digest and dst_ref.tag:
        raise DestinationTagConflict(
            f"{dst_ref} points at {tag_digest}, not {digest}; the rule refuses to replace it "
            "(on_tag_conflict: refuse), so the destination keeps its image"
        )


def _moved_on(src: RegistryClient, src_ref: ImageReference, digest: str) -> bool:
    """True when the source names a tag that no longer points at `digest` (pushed again, or removed)."""
    return bool(src_ref.tag) and src.head_manifest(src_ref.repository, src_ref.tag or "") != digest


def probe_destination(
    source: str,
    destination: str,
    *,
    source_session: Any = None,
    destination_session: Any = None,
    insecure_registries: Collection[str] = (),
    retry: RetryPolicy | None = None,
    put_tag: bool = True,
    bounds: Bounds | None = None,
    source_ecr: tuple[str, str] | None = None,
    replace_tag: bool = True,
) -> PrecheckResult:
    """Resolve the source digest; "present", "tagged" (tag put, no blobs moved), "superseded" (the digest
    is there but the source tag moved on before the tag was put: no tag put) or "copy-needed".

    With `put_tag=False` nothing is written: "tagged" then means a real run would only put the tag. With
    `replace_tag=False` a destination tag at another digest raises DestinationTagConflict.
    `source_ecr`: the (account, Region) of the ECR registry the source stands for when its host is not ECR's.
    """
    src_ref, dst_ref, src, dst = _resolve(
        source, destination, source_session, destination_session, insecure_registries, retry, 4, bounds
    )
    digest = src.head_manifest(src_ref.repository, src_ref.reference)
    if digest is None:
        raise _missing(src_ref, source_session, source_ecr)
    if src_ref.digest and digest != src_ref.digest:
        raise DigestMismatch(f"{src_ref} resolved to {digest}")
    tag_digest = dst.head_manifest(dst_ref.repository, dst_ref.reference)
    if tag_digest == digest:
        return PrecheckResult(action="present", digest=digest, destination_digest=tag_digest)
    _check_conflict(dst_ref, tag_digest, digest, replace_tag)
    if dst.head_manifest(dst_ref.repository, digest) != digest:
        return PrecheckResult(action="copy-needed", digest=digest, destination_digest=tag_digest)
    if not put_tag:
        return PrecheckResult(action="tagged", digest=digest, destination_digest=tag_digest)
    _check_mutable(dst_ref, destination_session, tag_digest, digest)
    manifest = dst.get_manifest(dst_ref.repository, digest)
    if manifest is None:
        return PrecheckResult(action="copy-needed", digest=digest, destination_digest=tag_digest)
    if _moved_on(src, src_ref, digest):
        return PrecheckResult(action="superseded", digest=digest, destination_digest=tag_digest)
    dst.put_manifest(dst_ref.repository, dst_ref.reference, manifest)
    return PrecheckResult(action="tagged", digest=digest, destination_digest=digest)


def copy_image(
    source: str,
    destination: str,
    *,
    source_session: Any = None,
    destination_session: Any = None,
    insecure_registries: Collection[str] = (),
    progress: ProgressCallback | None = None,
    max_parallel_blobs: int = DEFAULT_PARALLEL_BLOBS,
    retry: RetryPolicy | None = None,
    upload_mode: UploadMode = "put",
    deadline: float | None = None,
    bounds: Bounds | None = None,
    put_rate: float | None = None,
    source_ecr: tuple[str, str] | None = None,
    replace_tag: bool = True,
) -> CopyOutcome:
    """Copy `source` to `destination` (references like `host:port/repo:tag` or `host/repo@sha256:...`).

    A source naming a tag (`repo:tag`, or `repo:tag@digest` to copy that digest) is looked up again right
    before the destination tag is put: if the tag has moved on, the tag is not put ("superseded").

    `deadline`: seconds the whole copy may take (RegistryTimeout past it); `bounds`: the per-exchange and
    per-blob bounds (`Bounds()` by default); `put_rate`: manifest PUTs a second at the destination
    (ECR's PutImage quota for ECR hosts by default, unpaced elsewhere); `source_ecr`: the (account, Region) of
    the ECR registry the source stands for when its host is not ECR's (asked whether a missing image is archived);
    `replace_tag=False`: a destination tag at another digest raises DestinationTagConflict before anything is
    written.
    """
    started = time.monotonic()
    if max_parallel_blobs < 1:
        raise ValueError("max_parallel_blobs must be at least 1")
    bounds = bounds or Bounds()
    if deadline is not None:
        bounds = replace(bounds, deadline=started + deadline)
    src_ref, dst_ref, src, dst = _resolve(
        source,
        destination,
        source_session,
        destination_session,
        insecure_registries,
        retry,
        max_parallel_blobs + 4,
        bounds,
        put_rate,
    )
    top = src.get_manifest(src_ref.repository, src_ref.reference)
    if top is None:
        raise _missing(src_ref, source_session, source_ecr)
    if dst_ref.digest and dst_ref.digest != top.digest:
        raise InvalidReference(
            f"destination digest {dst_ref.digest} differs from the source digest {top.digest}"
        )
    platforms = _platforms(src, src_ref, top)  # before any write: a failure here leaves nothing half done
    copier = _Copier(src, dst, src_ref, dst_ref, progress, max_parallel_blobs, upload_mode)
    try:
        tag_digest = dst.head_manifest(dst_ref.repository, dst_ref.reference)
        action: Literal["copied", "tagged", "present", "superseded"]
        subjects = [top.digest, *(c.digest for c in top.children)]
        if tag_digest == top.digest:
            action = "present"
            referrers = copier.copy_referrers(subjects)
        else:
            _check_conflict(dst_ref, tag_digest, top.digest, replace_tag)
            _check_mutable(dst_ref, destination_session, tag_digest, top.digest)
            if dst.head_manifest(dst_ref.repository, top.digest) == top.digest:
                action = "tagged"
            else:
                copier.copy_tree(top, top.digest)
                action = "copied"
            # The tag is the last write: a tag at the destination means the image and its referrers are all
            # there, which is what a later precheck's "present" relies on.
            referrers = copier.copy_referrers(subjects)
            if dst_ref.tag and _moved_on(src, src_ref, top.digest):
                action = "superseded"  # a newer push of the tag is replicated by its own run
            elif dst_ref.tag:
                dst.put_manifest(dst_ref.repository, dst_ref.reference, top)
    finally:
        copier.close()
    return CopyOutcome(
        action=action,
        source=str(src_ref),
        destination=str(dst_ref),
        source_digest=top.digest,
        destination_digest=top.digest,
        media_type=top.media_type,
        platforms=platforms,
        blobs_copied=copier.blobs.copied,
        blobs_skipped=copier.blobs.skipped,
        bytes_copied=copier.blobs.bytes_copied,
        seconds=round(time.monotonic() - started, 3),
        referrers_copied=referrers,
        finished_at=datetime.now(UTC).isoformat(),
        referrers_refused=copier.refused_count,
        refused_referrers=copier.refused,
    )


def _platforms(src: RegistryClient, src_ref: ImageReference, top: Manifest) -> list[str]:
    """Platforms named by the index, or read from the config of a single image."""
    if top.is_index:
        return [c.platform for c in top.children if c.platform and c.platform != "unknown/unknown"]
    config = top.blobs[0] if top.blobs else None
    if config is None or config.size > (1 << 20):
        return []
    platform = _platform_of_config(src.read_blob(src_ref.repository, config.digest))
    return [platform] if platform else []
