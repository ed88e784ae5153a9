"""A seeded destination's copy inside its Region (why: workflow/pipeline/seeds.py).

The copy job (source Region) waits until the Region's seed holds the digest it copies, then invokes the Region's
relay function, which copies `seed@digest` to `destination@digest` inside that Region (`relay_copy`), reading through
the seed's destination role and writing through the destination's own. The job then runs its usual copy from the
source: the digest is there, so it moves no blob, and does what only it does (the referrers the seed lacks, the
newest-push check, the tag). When the seed does not arrive in time or the relay fails, that usual copy moves the
bytes itself: the seed saves transfer, it is never needed for correctness.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any

from workflow.core.exceptions import InvalidReference, ReplicationError
from workflow.engine.copier import CopyOutcome, copy_image
from workflow.engine.roles import assume_role
from workflow.registry.factory import make_client
from workflow.registry.reference import parse_reference

SESSION_NAME = "ecr-replication-seed"
SEED_WAIT_SECONDS = 300.0  # at most; and at most a third of the copy's deadline
SEED_POLL_SECONDS = 3.0
RELAY_TIMEOUT_SECONDS = 900  # the relay function's timeout (Lambda's maximum, 15 minutes)
RELAY_MARGIN_SECONDS = 60
RESPONSE_LIMIT = 64 * 1024  # a relay answer is a copy outcome or an error: a few hundred bytes


@dataclass(frozen=True)
class Seed:
    """The seed a copy may come from: its image (`registry/repository:tag`), its role, and its Region's relay."""

    image: str
    role_arn: str
    relay_function: str
    external_id: str | None = None


@dataclass(frozen=True)
class Relayed:
    """What the relay moved inside the Region."""

    action: str
    bytes_copied: int
    blobs_copied: int
    blobs_skipped: int
    seconds: float
    seeded_from: str


def _region_of(function_arn: str) -> str:
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
        raise InvalidReference(f"invalid relay function ARN {function_arn!r}")
    return parts[3]


def _wait_for_seed(
    seed: Seed, digest: str, insecure: Collection[str], bound: float, sleep: Callable[[float], None]
) -> bool:
    """True once the seed's repository holds `digest` (read through the seed's role), False after `bound` s."""
    reference = parse_reference(seed.image)
    session = assume_role(
        seed.role_arn, SESSION_NAME, external_id=seed.external_id, purpose="reading the seed"
    )
    client = make_client(reference.registry, session=session, insecure_registries=insecure)
    waited = time.monotonic() + bound
    while True:
        if client.head_manifest(reference.repository, digest) == digest:
            return True
        if time.monotonic() + SEED_POLL_SECONDS > waited:
            return False
        sleep(SEED_POLL_SECONDS)


def _answer(response: dict[str, Any]) -> dict[str, Any]:
    """The relay's answer as a JSON object (a function error, or a malformed answer, as `{"error", "message"}`)."""
    raw = response["Payload"].read(RESPONSE_LIMIT + 1)
    try:
        answer = json.loads(raw) if len(raw) <= RESPONSE_LIMIT else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return {"error": "RelayAnswerInvalid", "message": "the relay's answer is not a JSON object"}
    if response.get("FunctionError"):
        return {
            "error": str(answer.get("errorType", "RelayFailed"))[:128],
            "message": str(answer.get("errorMessage"))[:500],
        }
    return answer


def _relayed(answer: dict[str, Any], seed: Seed) -> Relayed:
    counts = {k: answer.get(k) for k in ("bytes_copied", "blobs_copied", "blobs_skipped")}
    seconds = answer.get("seconds")
    if not all(isinstance(n, int) and n >= 0 for n in counts.values()) or not isinstance(
        seconds, int | float
    ):
        raise ValueError("the relay's answer is not a copy outcome")
    return Relayed(
        action=str(answer.get("action")),
        bytes_copied=int(counts["bytes_copied"] or 0),
        blobs_copied=int(counts["blobs_copied"] or 0),
        blobs_skipped=int(counts["blobs_skipped"] or 0),
        seconds=float(seconds),
        seeded_from=seed.image,
    )


def seed_first(
    seed: Seed,
    source: str,
    destination: str,
    *,
    destination_role_arn: str,
    destination_external_id: str | None = None,
    insecure_registries: Collection[str] = (),
    deadline: float | None = None,
    lambda_client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Relayed | None, str]:
    """Have the relay put `source`'s digest at `destination` from the seed; (what it moved, "") or (None, why not).

    `source` is pinned (`repo:tag@digest`, as the Precheck hands it). Errors are reasons, never raised: the caller
    copies from the source instead.
    """
    try:
        digest = parse_reference(source).digest
        target = parse_reference(destination)
        if not digest:
            return None, "the source is not pinned to a digest"
        bound = min(SEED_WAIT_SECONDS, deadline / 3) if deadline else SEED_WAIT_SECONDS
        started = time.monotonic()
        if not _wait_for_seed(seed, digest, insecure_registries, bound, sleep):
            return None, f"the seed {seed.image} did not hold {digest} within {bound:.0f} s"
        remaining = (deadline - (time.monotonic() - started)) if deadline else RELAY_TIMEOUT_SECONDS
        request = {
            "source": f"{parse_reference(seed.image).registry}/{parse_reference(seed.image).repository}@{digest}",
            "destination": f"{target.registry}/{target.repository}@{digest}",
            "source_role_arn": seed.role_arn,
            "source_external_id": seed.external_id,
            "destination_role_arn": destination_role_arn,
            "destination_external_id": destination_external_id,
            "insecure_registries": sorted(insecure_registries),
            "deadline": max(1.0, min(remaining, RELAY_TIMEOUT_SECONDS) - RELAY_MARGIN_SECONDS),
        }
        client = lambda_client or _lambda(seed.relay_function)
        answer = _answer(
            client.invoke(FunctionName=seed.relay_function, Payload=json.dumps(request).encode())
        )
        if "error" in answer:
            return None, f"the relay failed: {answer['error']}: {answer.get('message', '')}"
        return _relayed(answer, seed), ""
    except (ReplicationError, ValueError, KeyError) as error:
        return None, f"{type(error).__name__}: {error}"
    except Exception as error:  # AWS or network: the copy from the source goes on regardless
        return None, f"the relay could not be reached: {type(error).__name__}: {error}"


def _lambda(function_arn: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(read_timeout=RELAY_TIMEOUT_SECONDS + 10, retries={"total_max_attempts": 1})
    return boto3.client("lambda", region_name=_region_of(function_arn), config=config)


def merged(copied: CopyOutcome, relayed: Relayed | None, *, seconds: float) -> CopyOutcome:
    """The destination's outcome: the copy from the source, plus what the relay moved before it (`seconds`: the
    whole, waiting for the seed included)."""
    if relayed is None:
        return copied
    action = "copied" if copied.action == "tagged" and relayed.action == "copied" else copied.action
    return CopyOutcome(
        **{
            **asdict(copied),
            "action": action,
            "bytes_copied": copied.bytes_copied + relayed.bytes_copied,
            "blobs_copied": copied.blobs_copied + relayed.blobs_copied,
            "blobs_skipped": copied.blobs_skipped + relayed.blobs_skipped,
            "bytes_in_region": relayed.bytes_copied,
            "seeded_from": relayed.seeded_from,
            "relay_seconds": relayed.seconds,
            "seconds": round(seconds, 3),
        }
    )


def relay_copy(request: dict[str, Any]) -> dict[str, Any]:
    """The relay function's work: copy `source@digest` to `destination@digest` inside its Region, each side through
    its role; the CopyOutcome as a dict, or `{"error", "message"}`."""
    try:
        source, destination = str(request["source"]), str(request["destination"])
        digest = parse_reference(source).digest
        if not digest or parse_reference(destination).digest != digest:
            raise InvalidReference(
                "the relay copies one digest: source and destination must name the same digest"
            )
        sessions = [
            assume_role(
                str(request[f"{side}_role_arn"]), SESSION_NAME, external_id=request.get(f"{side}_external_id")
            )
            for side in ("source", "destination")
        ]
        outcome = copy_image(
            source,
            destination,
            source_session=sessions[0],
            destination_session=sessions[1],
            insecure_registries=tuple(str(h) for h in request.get("insecure_registries") or ()),
            deadline=float(request.get("deadline") or RELAY_TIMEOUT_SECONDS - RELAY_MARGIN_SECONDS),
        )
    except (ReplicationError, KeyError, ValueError) as error:
        return {"error": type(error).__name__, "message": str(error)[:500]}
    return asdict(outcome)
