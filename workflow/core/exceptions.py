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


class DigestMismatch(ReplicationError):
    """Bytes read or written do not hash to the expected digest."""


class DestinationTagImmutable(ReplicationError):
    """The destination tag is immutable and already points at a different digest."""


class TagDeleteRefused(ReplicationError):
    """A destination would not remove a deleted tag (ECR: an immutable tag, or a BatchDeleteImage failure)."""


class RegistryAuthError(ReplicationError):
    """The registry refused the credentials (401/403) or the token could not be obtained."""


class RegistryUnavailable(ReplicationError):
    """A transient registry fault (429, 5xx, dropped connection) persisted after all retries."""


class RegistryTimeout(ReplicationError):
    """A registry exchange, a blob transfer or the whole copy overran its deadline; the message says what stalled."""


class RegistryProtocolError(ReplicationError):
    """The registry answered with something the distribution spec does not allow."""


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


class FanOutFailed(ReplicationError):
    """A run at scale could not write or read its targets, results or events in the fan-out bucket (or none is
    configured), or a Distributed Map's result was unreadable: the record's error name."""
