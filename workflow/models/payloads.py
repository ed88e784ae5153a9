"""Typed models the workflow's states pass each other: requests, targets, copy results, records, the plan."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflow.core.redaction import redact

# superseded: the source tag moved on (a newer push) before the destination tag was put, so it was not.
CopyAction = Literal["copied", "tagged", "present", "superseded"]
# A delete target's outcomes: the tag removed, left alone (moved since, or in the source again), or not there.
DeleteAction = Literal["deleted", "kept", "absent"]
PrecheckAction = Literal["present", "tagged", "superseded", "copy-needed", "deleted", "kept", "absent"]
TargetStatus = Literal[
    "copied", "tagged", "present", "superseded", "planned", "failed", "deleted", "kept", "absent", "blocked"
]
# What a request asks for: replicate a pushed tag, or remove a deleted one (rules with propagate_deletes).
RequestAction = Literal["replicate", "delete"]
# A destination tag pointing at another digest: replace it, or refuse (DestinationTagConflict).
TagConflict = Literal["replace", "refuse"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# CreateRepository's imageTagMutabilityExclusionFilters: 1 to 5 filters, each of type WILDCARD and a value
# of 1 to 128 of [0-9a-zA-Z._*-] (ECR API reference, CreateRepository and ImageTagMutabilityExclusionFilter:
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageTagMutabilityExclusionFilter.html).
MAX_EXCLUSION_FILTERS = 5
EXCLUSION_FILTER_PATTERN = r"^[0-9a-zA-Z._*-]{1,128}$"
WITH_EXCLUSION = ("IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")


class _Described(_Model):
    """Models that are part of the config: each field's docstring is its schema description."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True
    )


class ExclusionFilter(_Described):
    """One tag mutability exclusion: tags matching `filter` (`*` matches any run of characters)."""

    filter: str = Field(pattern=EXCLUSION_FILTER_PATTERN)
    """Tags this matches are the exception to the repository's mutability (`*` matches any run)."""
    filter_type: Literal["WILDCARD"] = "WILDCARD"
    """The filter's kind; ECR knows WILDCARD only."""


class RepositorySettings(_Described):
    """How a destination repository is created when it does not exist.

    `IMMUTABLE_WITH_EXCLUSION`: every tag immutable except those an exclusion filter matches;
    `MUTABLE_WITH_EXCLUSION`: every tag mutable except those. Both need 1 to 5 filters, the others none.
    """

    tag_mutability: Literal["MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"] = (
        "MUTABLE"
    )
    """Whether a tag may be overwritten in the created repository (the _WITH_EXCLUSION forms need filters)."""
    tag_mutability_exclusion_filters: list[ExclusionFilter] | None = Field(
        default=None, min_length=1, max_length=MAX_EXCLUSION_FILTERS
    )
    """1-5 filters of tags that are the exception to `tag_mutability` (the _WITH_EXCLUSION forms only)."""
    scan_on_push: bool = False
    """Turn on ECR's basic scan on push in the created repository."""
    encryption: Literal["AES256", "KMS"] = "AES256"
    """How the created repository is encrypted: AES256, or KMS (with `kms_key`, else ECR's AWS-managed key)."""
    kms_key: str | None = None
    """The customer-managed KMS key (ARN or key id) for `encryption: KMS`."""

    @model_validator(mode="after")
    def _filters_match_the_mode(self) -> RepositorySettings:
        filters = self.tag_mutability_exclusion_filters
        if self.tag_mutability in WITH_EXCLUSION and not filters:
            raise ValueError(
                f"tag_mutability {self.tag_mutability} needs tag_mutability_exclusion_filters "
                f"(1 to {MAX_EXCLUSION_FILTERS})"
            )
        if self.tag_mutability not in WITH_EXCLUSION and filters:
            raise ValueError(
                "tag_mutability_exclusion_filters apply only to tag_mutability "
                f"IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, not {self.tag_mutability}"
            )
        return self


class DestinationRef(_Model):
    """One account/Region pair, as used for narrowing manual runs."""

    account: str
    region: str


class Override(_Model):
    """A break-glass override of promotion gates, from a manual input; only rules with `allow_override` take it.

    `requested_by` is what the starter recorded (`ecr-replicate start` puts its caller identity ARN there);
    Step Functions does not tell a state who started the execution: CloudTrail's StartExecution event does.
    """

    reason: str = Field(min_length=1, max_length=1024)
    requested_by: str | None = Field(default=None, max_length=2048)


class CredentialsSecret(_Model):
    """Where a destination in another partition keeps its access key pair: a Secrets Manager secret of the
    source account (ARN or name) and the Region to read it in. Only this reference travels, never the value."""

    secret_id: str
    region: str


class ReplicationRequest(_Model):
    """One image to replicate, from an ECR push event or a manual input."""

    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    source_account: str | None = None
    source_region: str | None = None
    destinations: list[DestinationRef] | None = None
    dry_run: bool = False
    origin: Literal["event", "manual"] = "manual"
    action: RequestAction = "replicate"
    skipped_reason: str | None = None
    # When the image was pushed (the ECR event's time); for a manual run, when the execution started.
    pushed_at: datetime | None = None
    override: Override | None = None


class SeedSource(_Model):
    """Where a destination copies from inside its Region: the destination of the Region's first target (its seed),
    read through the seed's own destination role (read-only use of a role the copy assumes anyway), by the relay
    function of that Region (`relay_function`, deployed in the source account there)."""

    image: str  # registry/repository:tag of the seed's destination
    role_arn: str
    external_id: str | None = None
    insecure: bool = False
    relay_function: str


class Target(_Model):
    """One destination to copy one image to."""

    account: str
    region: str
    repository: str
    tag: str
    rule: str
    source_registry: str
    source_repository: str
    source_reference: str
    registry: str
    # The source's ECR account and Region (its registry may be an `endpoints` registry standing for them):
    # where a missing source image is asked after (DescribeImages: is it archived?).
    source_account: str | None = None
    source_region: str | None = None
    role_arn: str
    external_id: str | None = None
    credentials: CredentialsSecret | None = None
    insecure: bool = False
    source_insecure: bool = False
    create_repository: RepositorySettings | None = None
    # "delete": remove the tag where it still points at `source_reference`, the digest the source tag had.
    action: RequestAction = "replicate"
    # Every rule selecting this destination (`rule` is the first); it replicates if one of them lets it.
    rules: list[str] = Field(default_factory=list)
    # The digest the Gate step passed: the copy is pinned to it, never to what the tag points at later.
    gated_digest: str | None = None
    # Manifest PUTs a second the copy may make: its share of the destination account and Region's PutImage
    # quota among the builds the Map runs there at once (workflow.registry.pacing.put_image_share).
    put_rate: float | None = None
    # A delete's other source repositories replicated into the same destination repository (the tag is
    # kept while one of them has it); None when the rules may send repositories there the config cannot
    # name (a pattern, with a template without {repository}): the live delete then keeps the tag.
    other_sources: list[str] | None = Field(default_factory=list)
    # A destination tag at another digest: "replace" it, or "refuse" (DestinationTagConflict) if any
    # selecting rule refuses.
    on_tag_conflict: TagConflict = "replace"
    # Another destination in this one's Region that the source is copied to first: this one is copied from it,
    # inside the Region (workflow/pipeline/seeds.py); None for a seed itself and for a Region's only destination.
    seed: SeedSource | None = None
    # Where the image is (`account/region`): the source whose push (or manual input) planned this target.
    source: str | None = None
    # A source in another account than the home one: its read-only role, which reads the image there.
    source_role_arn: str | None = None

    @property
    def destination_reference(self) -> str:
        """`registry/repository:tag` at the destination."""
        return f"{self.registry}/{self.repository}:{self.tag}"

    @property
    def source_tag_image(self) -> str:
        """`registry/repository:tag` at the source: what the tag points at now, whatever the event said."""
        return f"{self.source_registry}/{self.source_repository}:{self.tag}"

    @property
    def selecting_rules(self) -> list[str]:
        """The rules selecting this destination."""
        return self.rules or [self.rule]

    @property
    def source_to_check(self) -> str:
        """What the Precheck resolves: the gated digest (with its tag, for the newest-push check) when the Gate
        step passed one, else the tag now."""
        if self.gated_digest:
            return f"{self.source_tag_image}@{self.gated_digest}"
        return self.source_tag_image

    @property
    def source_image(self) -> str:
        """`registry/repository:tag` or `registry/repository@digest` at the source."""
        separator = "@" if self.source_reference.startswith("sha256:") else ":"
        return f"{self.source_registry}/{self.source_repository}{separator}{self.source_reference}"


class RefusedReferrer(_Model):
    """A referrer the destination refused with HTTP 405 (ECR, for some OCI 1.1 referrers): not copied."""

    digest: str
    artifact_type: str | None = None
    reason: str


class CopyResult(_Model):
    """What one copy did. Exported by the CodeBuild job as RESULT."""

    action: CopyAction
    source: str
    destination: str
    source_digest: str
    destination_digest: str
    media_type: str
    platforms: list[str] = Field(default_factory=list)
    blobs_copied: int = 0
    blobs_skipped: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0
    referrers_copied: int = 0
    finished_at: str | None = None  # ISO 8601 UTC, when the destination tag was put
    # Referrers the destination refused (ReferrerRefused): how many, and the first few by name.
    referrers_refused: int = 0
    refused_referrers: list[RefusedReferrer] = Field(default_factory=list)
    # Of bytes_copied, those the relay moved inside the destination's Region from its seed (`seeded_from`).
    bytes_in_region: int = 0
    seeded_from: str | None = None
    relay_seconds: float = 0.0


class TargetResult(_Model):
    """The final record of one target, as the Map emits it and the summary reads it."""

    account: str
    region: str
    repository: str
    tag: str
    status: TargetStatus
    planned_action: Literal["tag", "copy", "delete"] | None = None
    # Why a delete left the tag ("moved since": it points at another digest now; "in the source": re-pushed).
    kept_reason: str | None = None
    digest: str | None = None
    bytes_copied: int = 0
    blobs_copied: int = 0
    blobs_skipped: int = 0
    seconds: float = 0.0
    error: str | None = None
    cause: str | None = (
        None  # redacted (workflow.core.redaction): records feed the summary, the email, the events
    )
    build_arn: str | None = None
    # When the destination tag was put (copied, tagged): the end of the replication lag.
    finished_at: datetime | None = None
    # Referrers the destination refused (ReferrerRefused, HTTP 405): how many, and the first few named. Left
    # out of the record when there are none, so the common record is no larger (the Map's state is bounded).
    referrers_refused: int = Field(default=0, exclude_if=lambda count: not count)
    refused_referrers: str | None = Field(default=None, exclude_if=lambda named: named is None)

    # The copy build's duration, from its Build (what CodeBuild bills), 0 without a build.
    build_seconds: float = 0.0
    # Of bytes_copied, those a copier inside the destination's Region moved (from a seed there): no transfer
    # between Regions; and how long that relay function ran.
    bytes_in_region: int = 0
    relay_seconds: float = 0.0
    # The source the image came from (`account/region`).
    source: str | None = None

    _redacted = field_validator("cause")(lambda cause: None if cause is None else redact(cause))


class S3Object(_Model):
    """An object of the fan-out bucket, in the JSON as the state machine's S3 integrations name it (`Bucket`,
    `Key`: the ItemReader's Parameters read them from the plan as they are)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    bucket: str = Field(alias="Bucket", min_length=3, max_length=63)
    key: str = Field(alias="Key", min_length=1, max_length=1024)


FanOut = Literal["inline", "distributed"]


class Plan(_Model):
    """The Plan state's output: what to copy where, or why nothing replicates.

    Past `workflow.pipeline.fanout.INLINE_LIMIT` targets the plan is `distributed`: its targets are in the
    fan-out bucket (`targets_object`, the Distributed Map's ItemReader reads them), `targets` is empty, and the
    Map writes its results under `results_prefix` (ResultWriter) and its own output into `map_run`. The fields
    the state machine writes later (`map_run`, `gate_error`, `fan_out_error`) are here from the start, as
    `null`, so that every path the ASL reads exists (a missing one is States.Runtime, which nothing catches).
    """

    repository: str | None = None
    tag: str | None = None
    dry_run: bool = False
    action: RequestAction = "replicate"
    targets: list[Target] = Field(default_factory=list)
    skipped_reason: str | None = None
    pushed_at: datetime | None = None
    # True when a target's rule has promotion gates: the Gate step runs before any destination is touched.
    gated: bool = False
    # Targets the Gate step blocked (or could not gate): their records, beside the Map's.
    blocked: list[TargetResult] = Field(default_factory=list)
    override: Override | None = None
    # Accounts of the selecting rules' organization destinations that receive nothing, each with why
    # (suspended, closed, excluded, the management account): `account: reason (rule R)`, at most 20 and a count.
    skipped_accounts: list[str] = Field(default_factory=list)
    fan_out: FanOut = "inline"
    targets_object: S3Object | None = None
    blocked_object: S3Object | None = None
    results_prefix: str | None = None
    map_run: dict[str, Any] | None = None
    gate_error: dict[str, Any] | None = None
    fan_out_error: dict[str, Any] | None = None
    # The source of the image (`account/region`): the event's account and Region, or the manual input's.
    source: str | None = None
