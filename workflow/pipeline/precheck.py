"""Precheck of one target: assume the destination role, ensure the repository, ask the registry.

The answer decides whether the Copy (a CodeBuild job) runs at all, so duplicate events and re-runs
never start a build: "present" and "tagged" finish the target here. In a dry run nothing is written:
no repository is created and no tag is put; the answer says what a real run would do.

The source is resolved by its tag, not by the digest an event carried: a late or retried event for an
earlier push of the same tag replicates what the tag points at now instead of rolling destinations back.
The copy job is then pinned to the digest seen here, with the tag (`repo:tag@digest`): right before it puts
the destination tag it looks the source tag up again, and when a newer push has moved it on it leaves the
tag to that push's run (`superseded`), so the newest push wins whichever execution ends last.

A delete target (rules with `propagate_deletes`) is finished here too: `workflow.pipeline.deletes` removes the tag
where it is safe, and the answer is "deleted", "kept" or "absent" (never a copy).
A target the Gate step passed is resolved by the digest it gated (`gated_digest`, as `repo:tag@digest`):
what is copied is always what the gates checked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import boto3
from pydantic import BaseModel, ConfigDict

from workflow.core.partitions import partition_of
from workflow.engine import copier as copy
from workflow.engine import ecr
from workflow.engine.copier import PrecheckResult
from workflow.engine.roles import SessionFactory, assume_role, destination_session
from workflow.models.payloads import PrecheckAction, Target, TargetResult, TargetStatus
from workflow.pipeline import deletes
from workflow.registry.deadline import Bounds

ROLE_SESSION_NAME = "ecr-replication-precheck"


class CopyJob(BaseModel):
    """What the Copy state hands the CodeBuild job (its PLAINTEXT environment variables)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_image: str
    destination_image: str
    role_arn: str
    external_id: str = ""
    destination_region: str = ""
    # A destination in another partition: the secret the job reads the key pair from (never the value).
    credentials_secret: str = ""
    credentials_region: str = ""
    insecure_registries: str = ""
    # Manifest PUTs a second (the target's share of the PutImage quota), empty for the engine's default.
    put_rate: str = ""
    # The rule's on_tag_conflict: the copy job refuses, too, a tag that moved to another digest meanwhile.
    on_tag_conflict: str = "replace"
    # A seeded destination (workflow/pipeline/seeds.py): the seed's image and role, and the relay of its Region.
    seed_image: str = ""
    seed_role_arn: str = ""
    seed_external_id: str = ""
    relay_function: str = ""
    # A source in another account: the read-only role there the job assumes to read the image (else empty).
    source_role_arn: str = ""


class PrecheckOutcome(BaseModel):
    """The Precheck state's output: `copy_needed` says whether the Copy state runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: PrecheckAction
    copy_needed: bool
    dry_run: bool
    record: TargetResult
    job: CopyJob


def insecure_registries(target: Target) -> list[str]:
    """Plain-HTTP registries of a target (local runtime endpoints), usually none."""
    hosts = []
    if target.insecure:
        hosts.append(target.registry)
    if target.source_insecure and target.source_registry not in hosts:
        hosts.append(target.source_registry)
    seed = target.seed.image.split("/", 1)[0] if target.seed and target.seed.insecure else None
    if seed and seed not in hosts:
        hosts.append(seed)
    return hosts


def is_ecr_destination(target: Target) -> bool:
    """True when the destination registry is the ECR registry of the target's account/Region."""
    return target.registry.lower() == partition_of(target.region).ecr_registry(target.account, target.region)


def assume_destination_role(
    target: Target,
    *,
    sts_client: Any = None,
    secrets_client: Any = None,
    session_factory: SessionFactory = boto3.Session,
) -> Any:
    """A boto3 Session with the destination role's credentials (renewed before expiry), in the target's Region;
    in another partition, assumed with the key pair the target's credentials secret holds."""
    return destination_session(
        target.role_arn,
        ROLE_SESSION_NAME,
        external_id=target.external_id,
        region=target.region,
        secret_id=target.credentials.secret_id if target.credentials else None,
        secret_region=target.credentials.region if target.credentials else None,
        sts_client=sts_client,
        secrets_client=secrets_client,
        session_factory=session_factory,
        purpose=f"{target.account}/{target.region}",
    )


def assume_source_role(
    target: Target, *, sts_client: Any = None, session_factory: SessionFactory = boto3.Session
) -> Any:
    """A boto3 Session with the source's read-only role (a source in another account than the home one), in the
    source's Region; None for a source the caller's own role reads."""
    if target.source_role_arn is None:
        return None
    region = (target.source or "/").split("/", 1)[1] or None
    return assume_role(
        target.source_role_arn,
        ROLE_SESSION_NAME,
        region=region,
        sts_client=sts_client,
        session_factory=session_factory,
        purpose=f"reading the source {target.source}",
    )


def check_target(
    target: Target,
    *,
    dry_run: bool = False,
    sts_client: Any = None,
    secrets_client: Any = None,
    session_factory: SessionFactory = boto3.Session,
    bounds: Bounds | None = None,
) -> PrecheckOutcome:
    """Precheck one target and say whether it needs a copy (never in a dry run); `bounds` bound its registry
    work (the Lambda's remaining time)."""
    session = assume_destination_role(
        target, sts_client=sts_client, secrets_client=secrets_client, session_factory=session_factory
    )
    source_session = assume_source_role(target, sts_client=sts_client, session_factory=session_factory)
    insecure = insecure_registries(target)
    if target.action == "delete":
        removed = deletes.delete_tag(
            target,
            session,
            dry_run=dry_run,
            source_session=source_session,
            insecure_registries=insecure,
            bounds=bounds,
        )
        return _delete_outcome(target, removed, dry_run=dry_run, insecure=insecure)
    if not dry_run and target.create_repository is not None and is_ecr_destination(target):
        ecr.ensure_repository(
            session,
            target.region,
            target.repository,
            target.create_repository,
            registry_id=target.account,
        )
    result = copy.probe_destination(
        target.source_to_check,
        target.destination_reference,
        source_session=source_session,
        destination_session=session,
        insecure_registries=insecure,
        put_tag=not dry_run,
        source_ecr=(target.source_account, target.source_region)
        if target.source_account and target.source_region
        else None,
        replace_tag=target.on_tag_conflict == "replace",
        bounds=bounds,
    )
    return _outcome(target, result, dry_run=dry_run, insecure=insecure)


def _delete_outcome(
    target: Target, result: deletes.DeleteResult, *, dry_run: bool, insecure: list[str]
) -> PrecheckOutcome:
    planned = dry_run and result.action == "deleted"
    record = TargetResult(
        account=target.account,
        region=target.region,
        repository=target.repository,
        tag=target.tag,
        status="planned" if planned else result.action,
        planned_action="delete" if planned else None,
        digest=target.source_reference,
        kept_reason=result.reason,
        finished_at=datetime.now(UTC) if result.action == "deleted" and not dry_run else None,
        source=target.source,
    )
    return PrecheckOutcome(
        action=result.action,
        copy_needed=False,
        dry_run=dry_run,
        record=record,
        job=_job(target, None, insecure),
    )


def _job(target: Target, digest: str | None, insecure: list[str]) -> CopyJob:
    source = f"{target.source_registry}/{target.source_repository}:{target.tag}"
    pinned = f"{source}@{digest}" if digest else None
    return CopyJob(
        source_image=pinned or target.source_image,
        destination_image=target.destination_reference,
        role_arn=target.role_arn,
        external_id=target.external_id or "",
        destination_region=target.region,
        credentials_secret=target.credentials.secret_id if target.credentials else "",
        credentials_region=target.credentials.region if target.credentials else "",
        insecure_registries=" ".join(insecure),
        put_rate="" if target.put_rate is None else str(target.put_rate),
        on_tag_conflict=target.on_tag_conflict,
        seed_image=target.seed.image if target.seed else "",
        seed_role_arn=target.seed.role_arn if target.seed else "",
        seed_external_id=(target.seed.external_id or "") if target.seed else "",
        relay_function=target.seed.relay_function if target.seed else "",
        source_role_arn=target.source_role_arn or "",
    )


def _planned_action(result: PrecheckResult) -> Literal["tag", "copy"]:
    """What a real run would do where a dry run only looked."""
    return "tag" if result.action == "tagged" else "copy"


def _outcome(
    target: Target, result: PrecheckResult, *, dry_run: bool, insecure: list[str]
) -> PrecheckOutcome:
    copy_needed = result.action == "copy-needed" and not dry_run
    status: TargetStatus
    if result.action in ("present", "superseded"):
        status = "present" if result.action == "present" else "superseded"
    elif dry_run:
        status = "planned"
    else:
        status = "tagged" if result.action == "tagged" else "planned"
    record = TargetResult(
        account=target.account,
        region=target.region,
        repository=target.repository,
        tag=target.tag,
        status=status,
        planned_action=_planned_action(result) if status == "planned" and dry_run else None,
        digest=result.digest,
        finished_at=datetime.now(UTC) if status in ("tagged", "superseded") else None,
        source=target.source,
    )
    return PrecheckOutcome(
        action=result.action,
        copy_needed=copy_needed,
        dry_run=dry_run,
        record=record,
        job=_job(target, result.digest, insecure),
    )
