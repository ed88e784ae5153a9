"""Deletions that follow: remove a tag deleted at the source from one destination, only where that is safe.

A delete target (a DELETE event or `"action": "delete"`, for a rule with `propagate_deletes`) carries the
digest the source tag had. The destination tag is removed only when it still points at that digest and
the source has not been given the tag again:
- "absent": the destination has no such tag;
- "kept" (moved since): the destination tag points at another digest now, so someone moved it there;
- "kept" (in the source): the source has the tag again (re-pushed after the delete), or another source
  repository replicated into the same destination repository has it (`Target.other_sources`, named from the
  config when the plan is made);
- "kept" (other sources write it): the rules send repositories there that only a listing of the source could
  name (a pattern, with a template without `{repository}`); `sync --apply-deletes`, which lists them, decides;
- "deleted": the tag was removed. Only the tag: ECR by BatchDeleteImage with the imageTag alone (an
  image other tags still name keeps them; ECR deletes an image with its last tag, and refuses to delete
  one an index still references), another registry by the distribution spec's DELETE by tag. A digest is
  never deleted.
A destination that refuses (an immutable tag) raises TagDeleteRefused, which no state retries. The check
and the removal are two requests: a tag moved between them, within a second, is still removed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

from workflow.engine import ecr
from workflow.models.payloads import DeleteAction, Target
from workflow.registry.auth import ecr_host_parts
from workflow.registry.deadline import Bounds
from workflow.registry.factory import make_client

KEPT_MOVED = "moved since"
KEPT_IN_SOURCE = "in the source"
KEPT_SHARED = "other sources write it"


class DeleteResult(NamedTuple):
    """What a delete target found (and did, unless `dry_run`); `reason` says why a tag was kept."""

    action: DeleteAction
    destination_digest: str | None
    reason: str | None = None


def delete_tag(
    target: Target,
    destination_session: Any,
    *,
    dry_run: bool = False,
    source_session: Any = None,
    insecure_registries: Collection[str] = (),
    check_source: bool = True,
    bounds: Bounds | None = None,
) -> DeleteResult:
    """Remove the target's tag at its destination where it still points at `target.source_reference`.

    `check_source=False` leaves out the source HEAD, for a caller that has just listed the source (sync).
    """
    expected = target.source_reference
    if check_source:
        source = make_client(
            target.source_registry,
            session=source_session,
            insecure_registries=insecure_registries,
            bounds=bounds,
        )
        if target.other_sources is None:
            return DeleteResult("kept", None, KEPT_SHARED)
        for repository in (target.source_repository, *target.other_sources):
            if source.head_manifest(repository, target.tag) is not None:
                return DeleteResult("kept", None, KEPT_IN_SOURCE)
    parts = ecr_host_parts(target.registry)
    registry = None
    if parts:  # ECR by its API, as the destination role: DescribeImages, then BatchDeleteImage
        current = ecr.tag_digest(
            destination_session, parts[1], target.repository, target.tag, registry_id=parts[0]
        )
    else:
        registry = make_client(
            target.registry,
            session=destination_session,
            insecure_registries=insecure_registries,
            push=True,
            bounds=bounds,
        )
        current = registry.head_manifest(target.repository, target.tag)
    if current is None:
        return DeleteResult("absent", None)
    if current != expected:
        return DeleteResult("kept", current, KEPT_MOVED)
    if dry_run:
        return DeleteResult("deleted", current)
    if parts:
        removed = ecr.delete_tag(
            destination_session, parts[1], target.repository, target.tag, registry_id=parts[0]
        )
    else:
        assert registry is not None
        removed = registry.delete_tag(target.repository, target.tag)
    return DeleteResult("deleted", current) if removed else DeleteResult("absent", None)
