"""`ecr-replicate copy SOURCE DESTINATION`: copy one image, every platform, digest-preserving.

Progress goes to stderr, the CopyResult as JSON to stdout (and to --result-file). Exit 0 on success (a
referrer the destination refused is named on stderr and in the result: ReferrerRefused), 1 when the copy
fails (ImageArchived for a source image in ECR's archive storage class), 2 on bad arguments, each failure
with a one-line reason on stderr.
Non-ECR registry credentials: see `workflow.registry.auth` (ECR_REPLICATE_REGISTRY_AUTH).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from typing import Any

from workflow.core.commandline import (
    Failure,
    add_command,
    add_json_argument,
    failure_of,
    one_line,
    positive_float,
    positive_int,
    report,
)
from workflow.core.exceptions import InvalidReference
from workflow.core.grammar import account_problem, region_problem
from workflow.core.partitions import SUPPORTED, partition_of
from workflow.engine.copier import copy_image, parse_destination
from workflow.engine.progress import copy_progress, human
from workflow.engine.seeds import Relayed, Seed, merged, seed_first
from workflow.registry.reference import parse_reference

ROLE_ARN_RE = re.compile(rf"^arn:(?:{'|'.join(SUPPORTED)}):iam::[0-9]{{12}}:role/[\w+=,.@/-]{{1,512}}$")
ROLE_SESSION_NAME = "ecr-replicate-copy"
DEADLINE_ENV = "ECR_REPLICATE_COPY_DEADLINE"  # set by the copy project: its build timeout less a margin
SUPERSEDED_NOTE = "; the source tag moved on, so the destination tag is left to its newer push"
HOST_PORT_RE = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?$")


def register(subparsers: Any) -> None:
    """Add the `copy` sub-command."""
    parser = add_command(
        subparsers,
        "copy",
        summary="copy one image (all platforms, digest-preserving) between registries",
        description="Copy one image, every platform of an index and its referrers (signatures, SBOMs), from "
        "one registry to another, verifying every digest: what the workflow's copy job runs. A destination "
        "role is assumed with --dst-role-arn. Prints the result as JSON.",
        examples=[
            "ecr-replicate copy 111111111111.dkr.ecr.us-east-1.amazonaws.com/app:release-1.2.0 "
            "222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:release-1.2.0 "
            "--dst-role-arn arn:aws:iam::222222222222:role/ecr-replication-target",
            "ecr-replicate copy 127.0.0.1:5000/app:v1 127.0.0.1:5001/app:v1 --insecure-registry 127.0.0.1:5000 "
            "--insecure-registry 127.0.0.1:5001",
        ],
    )
    parser.add_argument("source", help="host[:port]/repo:tag or host[:port]/repo@sha256:...")
    parser.add_argument("destination", help="host[:port]/repo:tag")
    parser.add_argument("--src-role-arn", help="IAM role to assume for an ECR source")
    parser.add_argument("--dst-role-arn", help="IAM role to assume for an ECR destination")
    parser.add_argument("--src-external-id", help="sts:ExternalId for --src-role-arn")
    parser.add_argument("--dst-external-id", help="sts:ExternalId for --dst-role-arn")
    parser.add_argument(
        "--dst-credentials-secret",
        metavar="SECRET",
        help="a destination in another partition: the Secrets Manager secret (ARN or name) holding the access "
        "key pair that assumes --dst-role-arn there (read with this job's own credentials)",
    )
    parser.add_argument(
        "--dst-credentials-region", metavar="REGION", help="the Region of --dst-credentials-secret"
    )
    parser.add_argument(
        "--dst-region", metavar="REGION", help="the destination's Region: where STS assumes --dst-role-arn"
    )
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="registry spoken to over plain HTTP (loopback test registries); repeatable",
    )
    parser.add_argument(
        "--seed",
        metavar="IMAGE",
        help="a destination in DESTINATION's Region holding (or about to hold) the image: wait for it, and have the "
        "relay function there copy from it inside the Region; copy from SOURCE if that fails",
    )
    parser.add_argument("--seed-role-arn", help="the role the seed is read through (its destination role)")
    parser.add_argument("--seed-external-id", help="sts:ExternalId for --seed-role-arn")
    parser.add_argument("--relay-function", metavar="ARN", help="the relay function of the seed's Region")
    parser.add_argument(
        "--result-file", type=writable_file, help="also write the CopyResult JSON (or the error) here"
    )
    parser.add_argument(
        "--max-parallel-blobs", type=positive_int, default=8, help="blobs in flight at once (default 8)"
    )
    parser.add_argument(
        "--src-ecr",
        type=ecr_registry,
        metavar="ACCOUNT:REGION",
        help="the ECR registry SOURCE stands for when its host is not an ECR host (an `endpoints` registry): "
        "asked (DescribeImages) whether a missing source image is archived",
    )
    parser.add_argument(
        "--put-rate",
        type=positive_float,
        metavar="PER_SECOND",
        help="manifest PUTs a second at the destination (default: ECR's PutImage quota, 10, for ECR hosts; "
        "unpaced elsewhere); the copy job gets its build's share of the quota",
    )
    parser.add_argument(
        "--deadline",
        type=positive_float,
        metavar="SECONDS",
        help=f"end the copy with RegistryTimeout after this long (default ${DEADLINE_ENV}, else no deadline)",
    )
    parser.add_argument(
        "--on-tag-conflict",
        choices=("replace", "refuse"),
        default="replace",
        help="when the destination tag points at another digest: replace it (default), or refuse with "
        "DestinationTagConflict before anything is written",
    )
    add_json_argument(parser, "the result (always JSON)")
    parser.set_defaults(run=run)


def ecr_registry(value: str) -> tuple[str, str]:
    """An argparse type: `ACCOUNT:REGION` of an ECR registry."""
    account, _, region = value.partition(":")
    problem = account_problem(account) or region_problem(region)
    if problem:
        raise argparse.ArgumentTypeError(f"{value[:60]!r} is not ACCOUNT:REGION ({problem})")
    return account, region


def writable_file(path: str) -> str:
    """An argparse type: a file path that can be written, checked before the copy starts."""
    probe = f"{path}.partial"
    try:
        with open(probe, "w", encoding="utf-8"):
            pass
        os.remove(probe)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot write {path!r}: {error.strerror}") from None
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"cannot write {path!r}: it is a directory")
    return path


def assume_role(role_arn: str | None, external_id: str | None = None, *, sts_client: Any = None) -> Any:
    """A boto3 session holding the credentials of `role_arn`, renewed before expiry (None: no session)."""
    if role_arn is None:
        return None
    from workflow.engine.roles import assume_role as assume  # deferred: boto3 only when a role is given

    return assume(role_arn, ROLE_SESSION_NAME, external_id=external_id, sts_client=sts_client)


def destination_session(args: argparse.Namespace) -> Any:
    """The destination's session: --dst-role-arn assumed through STS, in another partition with the key pair
    of --dst-credentials-secret (None without a role)."""
    if args.dst_role_arn is None:
        return None
    from workflow.engine.roles import destination_session as assume  # deferred, as in assume_role

    secret = args.dst_credentials_secret
    return assume(
        args.dst_role_arn,
        ROLE_SESSION_NAME,
        external_id=args.dst_external_id,
        region=args.dst_region if secret else None,
        secret_id=secret,
        secret_region=args.dst_credentials_region,
    )


def _check_credentials_options(args: argparse.Namespace) -> None:
    """--dst-credentials-secret needs the role, its Region and the destination's, in one partition."""
    if args.dst_credentials_secret is None:
        return
    missing = [
        flag
        for flag, value in (
            ("--dst-role-arn", args.dst_role_arn),
            ("--dst-credentials-region", args.dst_credentials_region),
            ("--dst-region", args.dst_region),
        )
        if not value
    ]
    if missing:
        raise InvalidReference(f"--dst-credentials-secret needs {', '.join(missing)}")
    for flag in ("dst_credentials_region", "dst_region"):
        problem = region_problem(getattr(args, flag))
        if problem:
            raise InvalidReference(f"--{flag.replace('_', '-')}: {problem}")
    role_partition = args.dst_role_arn.split(":")[1]
    if partition_of(args.dst_region).name != role_partition:
        raise InvalidReference(
            f"--dst-region {args.dst_region} is not in the partition of --dst-role-arn ({role_partition})"
        )


def _fail(args: argparse.Namespace, failure: Failure) -> int:
    """Report a failure on stderr and, with --result-file, as `{"error", "message"}` for the state machine."""
    if args.result_file:
        _write_result(args.result_file, json.dumps({"error": failure.error, "message": failure.message}))
    return report(failure, as_json=args.json)


def _write_result(path: str, text: str) -> None:
    """Write the result whole or not at all (a temporary file renamed over it): the job reads it as JSON."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as file:
        file.write(text + "\n")
    os.replace(partial, path)


def _deadline(given: float | None) -> float | None:
    """Seconds the copy may take: --deadline, else $ECR_REPLICATE_COPY_DEADLINE, else None."""
    text = os.environ.get(DEADLINE_ENV, "")
    try:
        deadline = given if given is not None else float(text) if text.strip() else None
    except ValueError:
        raise InvalidReference(f"{DEADLINE_ENV}={text[:40]!r} is not a number of seconds") from None
    if deadline is not None and not 0 < deadline < float("inf"):
        raise InvalidReference(f"the copy deadline must be a positive number of seconds, not {deadline}")
    return deadline


def _check_seed_options(args: argparse.Namespace) -> None:
    """--seed needs its role, the relay and a pinned source; the seed is a reference, the role an ARN."""
    if args.seed is None:
        return
    missing = [
        flag
        for flag, value in (
            ("--seed-role-arn", args.seed_role_arn),
            ("--relay-function", args.relay_function),
        )
        if not value
    ]
    if missing:
        raise InvalidReference(f"--seed needs {', '.join(missing)}")
    parse_reference(args.seed)
    if not ROLE_ARN_RE.match(args.seed_role_arn):
        raise InvalidReference(f"invalid role ARN {args.seed_role_arn!r}")


def _from_seed(args: argparse.Namespace, deadline: float | None) -> Relayed | None:
    """What the seed's relay moved before the copy from the source, None without a seed or when it failed."""
    if args.seed is None:
        return None
    seed = Seed(args.seed, args.seed_role_arn, args.relay_function, args.seed_external_id)
    relayed, reason = seed_first(
        seed,
        args.source,
        args.destination,
        destination_role_arn=args.dst_role_arn,
        destination_external_id=args.dst_external_id,
        insecure_registries=tuple(args.insecure_registry),
        deadline=deadline,
    )
    if relayed is None:
        print(f"seed {args.seed}: {reason}; copying from the source", file=sys.stderr)
    return relayed


def run(args: argparse.Namespace) -> int:
    """Copy SOURCE to DESTINATION; print the CopyResult JSON (on failure, the error goes to the result file)."""
    try:
        parse_reference(args.source)
        parse_destination(args.destination)
        for arn in (args.src_role_arn, args.dst_role_arn):
            if arn is not None and not ROLE_ARN_RE.match(arn):
                raise InvalidReference(f"invalid role ARN {arn!r}")
        for host in args.insecure_registry:
            if not HOST_PORT_RE.match(host):
                raise InvalidReference(f"invalid --insecure-registry {host!r}: expected HOST:PORT")
        _check_credentials_options(args)
        _check_seed_options(args)
        deadline = _deadline(args.deadline)
    except InvalidReference as error:
        return _fail(args, failure_of(error))
    progress = None if args.json else copy_progress(sys.stderr)
    try:
        started = time.monotonic()
        relayed = _from_seed(args, deadline)
        if deadline is not None:  # what the wait for the seed and the relay left of it
            deadline = max(1.0, deadline - (time.monotonic() - started))
        sessions = (
            assume_role(args.src_role_arn, args.src_external_id),
            destination_session(args),
        )
        result = copy_image(
            args.source,
            args.destination,
            source_session=sessions[0],
            destination_session=sessions[1],
            insecure_registries=tuple(args.insecure_registry),
            progress=progress,
            max_parallel_blobs=args.max_parallel_blobs,
            deadline=deadline,
            put_rate=args.put_rate,
            source_ecr=args.src_ecr,
            replace_tag=args.on_tag_conflict == "replace",
        )
        result = merged(result, relayed, seconds=time.monotonic() - started)
    except Exception as error:  # a registry fault, AWS, or a defect: always a result for the state machine
        if getattr(args, "debug", False):
            traceback.print_exc()
        failure = failure_of(error)  # once the copy has started, any failure is the operation's (1)
        name = "CopyFailed" if failure.error == "InternalError" else failure.error
        return _fail(args, Failure(name, failure.message, 1))
    finally:
        if progress is not None:
            progress.close()
    text = result.to_json()
    print(text)
    if args.result_file:
        try:
            _write_result(args.result_file, text)
        except OSError as error:
            return report(
                Failure(type(error).__name__, one_line(f"the copy succeeded but {error}"), 1),
                as_json=args.json,
            )
    if not args.json:
        print(
            f"{result.action}: {result.destination} {result.destination_digest} "
            f"({result.blobs_copied} blobs, {human(result.bytes_copied)} in {result.seconds:.1f}s)"
            + (SUPERSEDED_NOTE if result.action == "superseded" else ""),
            file=sys.stderr,
        )
        if result.referrers_refused:
            print(refusal_line(result.referrers_refused, result.refused_referrers), file=sys.stderr)
    return 0


def refusal_line(count: int, named: list[dict[str, str | None]]) -> str:
    """`ReferrerRefused: the destination refused N referrer(s): DIGEST (TYPE), ...`: what a copy left out."""
    listed = ", ".join(f"{r['digest']} ({r['artifact_type'] or 'no artifact type'})" for r in named)
    more = f", and {count - len(named)} more" if count > len(named) else ""
    return (
        f"ReferrerRefused: the destination refused {count} referrer{'s' if count != 1 else ''}: {listed}{more} "
        "(HTTP 405; see docs/runbook.md#referrerrefused)"
    )
