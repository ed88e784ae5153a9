"""Typed errors. Each class name doubles as a Step Functions error name (ASL Retry/Catch ErrorEquals)."""

from __future__ import annotations


class ReplicationError(Exception):
    """Base class for every error this product raises on purpose."""


class InvalidConfig(ReplicationError):
    """The replication config is invalid; the message lists every problem with its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid replication config:\n  " + "\n  ".join(problems))


class InvalidRequest(ReplicationError):
    """A manual input or event cannot be parsed into a replication request."""


class DestinationNotAllowed(ReplicationError):
    """A manual run named a destination that the config does not allow."""


class ReplicationLoop(ReplicationError):
    """A target in the source account and Region that a rule selects again: its copy would start the workflow
    again (the config bypassed `validate`, which refuses it)."""


class InvalidReference(ReplicationError):
    """An image reference (registry/repository:tag or @digest) is malformed."""


class ImageNotFound(ReplicationError):
    """The source manifest (tag or digest) does not exist."""


class ImageArchived(ReplicationError):
    """The source image is in ECR's archive storage class (ARCHIVED, or ACTIVATING while it is restored): it
    cannot be pulled until restored (UpdateImageStorageClass to STANDARD, or Restore in the console)."""


class DigestMismatch(ReplicationError):
    """Bytes read or written do not hash to the expected digest."""


class DestinationTagImmutable(ReplicationError):
    """The destination tag is immutable and already points at a different digest."""


class DestinationTagConflict(ReplicationError):
    """The destination tag points at another digest and the rule refuses to replace it (on_tag_conflict: refuse)."""


class TagDeleteRefused(ReplicationError):
    """A destination would not remove a deleted tag (ECR: an immutable tag, or a BatchDeleteImage failure)."""


class RegistryAuthError(ReplicationError):
    """The registry refused the credentials (401/403) or the token could not be obtained."""


class DestinationRoleMissing(RegistryAuthError):
    """STS refused AssumeRole into a destination role (AccessDenied): the role does not exist in that account
    yet (a new account the fleet StackSet has not reached), or it does not trust this caller. STS answers both
    alike, so the name says the usual cause and the message both."""


class RegistryUnavailable(ReplicationError):
    """A transient registry fault (429, 5xx, dropped connection) persisted after all retries."""


class RegistryTimeout(ReplicationError):
    """A registry exchange, a blob transfer or the whole copy overran its deadline; the message says what stalled."""


class RegistryProtocolError(ReplicationError):
    """The registry answered with something the distribution spec does not allow."""


class ReferrerRefused(RegistryProtocolError):
    """The destination refused a referrer manifest with HTTP 405, as ECR does for some OCI 1.1 referrers
    (aws/containers-roadmap#2783): the image is copied without it, and the result names it."""


class CopyFailed(ReplicationError):
    """A copy build failed without reporting a result (install failure, timeout): the record's error name."""


class CopyResultInvalid(ReplicationError):
    """A copy build succeeded but its exported RESULT is missing, empty, not JSON, too large or not a result."""


class ReplicationFailed(ReplicationError):
    """At least one target failed; the error name of the state machine's final Fail state."""


class ImageBlocked(ReplicationError):
    """A promotion gate (scan findings, signature) refused the image for a destination: the record's error name."""


class GateCheckFailed(ReplicationError):
    """A promotion gate could not read the image's scan or signatures (an AWS API error): not copied."""


class OrganizationLookupFailed(ReplicationError):
    """AWS Organizations could not be read to resolve organization destinations (no delegation policy, an
    organizational unit that does not exist, throttling that outlasted the retries): nothing was planned."""


class TooManyDestinations(ReplicationError):
    """The organization destinations resolve to more destinations than one execution carries."""


class FanOutFailed(ReplicationError):
    """A run at scale could not write or read its targets, results or events in the fan-out bucket (or none is
    configured), or a Distributed Map's result was unreadable: the record's error name."""
