"""`ecr-replicate copy SOURCE DESTINATION`: copy one image, every platform, digest-preserving.

Progress goes to stderr, the CopyResult as JSON to stdout (and to --result-file). Exit 0 on success,
1 when the copy fails, 2 on bad arguments, each failure with a one-line reason on stderr.
Non-ECR registry credentials: see `workflow.registry.auth` (ECR_REPLICATE_REGISTRY_AUTH).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import traceback
from typing import Any, TextIO

from workflow.copy import ProgressEvent, copy_image, parse_destination
from workflow.exceptions import InvalidReference, ReplicationError
from workflow.registry.reference import parse_reference

ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")
ROLE_SESSION_NAME = "ecr-replicate-copy"
HOST_PORT_RE = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?$")


def register(subparsers: Any) -> None:
    """Add the `copy` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "copy", help="copy one image (all platforms, digest-preserving) between registries"
    )
    parser.add_argument("source", help="host[:port]/repo:tag or host[:port]/repo@sha256:...")
    parser.add_argument("destination", help="host[:port]/repo:tag")
    parser.add_argument("--src-role-arn", help="IAM role to assume for an ECR source")
    parser.add_argument("--dst-role-arn", help="IAM role to assume for an ECR destination")
    parser.add_argument("--src-external-id", help="sts:ExternalId for --src-role-arn")
    parser.add_argument("--dst-external-id", help="sts:ExternalId for --dst-role-arn")
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="registry spoken to over plain HTTP (loopback test registries); repeatable",
    )
    parser.add_argument("--result-file", help="also write the CopyResult JSON here")
    parser.add_argument(
        "--max-parallel-blobs", type=int, default=8, help="blobs in flight at once (default 8)"
    )
    parser.set_defaults(run=run)


def assume_role(role_arn: str | None, external_id: str | None = None, *, sts_client: Any = None) -> Any:
    """A boto3 session holding the credentials of `role_arn` (None: no session)."""
    if role_arn is None:
        return None
    from workflow.roles import assume_role as assume  # deferred: boto3 only when a role is given

    return assume(role_arn, ROLE_SESSION_NAME, external_id=external_id, sts_client=sts_client).session


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


class ProgressPrinter:
    """Per-blob lines and an overall bytes/rate line (at most twice a second) on a stream."""

    def __init__(self, stream: TextIO, interval: float = 0.5) -> None:
        self.stream, self.interval = stream, interval
        self.started = time.monotonic()
        self.last = 0.0
        self.moved = 0
        self.lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            short = event.digest[:19]
            if event.kind == "blob-bytes":
                self.moved += event.nbytes
                now = time.monotonic()
                if now - self.last >= self.interval:
                    self.last = now
                    rate = self.moved / max(now - self.started, 1e-6)
                    print(f"  {_human(self.moved)} copied, {_human(rate)}/s", file=self.stream)
            elif event.kind == "blob-done":
                print(f"blob {short} {_human(event.nbytes)} copied", file=self.stream)
            elif event.kind == "blob-skipped":
                print(f"blob {short} {_human(event.nbytes)} already present", file=self.stream)
            elif event.kind == "manifest":
                print(f"manifest {short} put", file=self.stream)


def _fail(args: argparse.Namespace, error_name: str, message: str, code: int) -> int:
    """Report a failure on stderr and, with --result-file, as `{"error", "message"}` for the state machine."""
    print(f"{'error' if code == 2 else 'failed'}: {error_name}: {message}", file=sys.stderr)
    if args.result_file:
        _write_result(args.result_file, json.dumps({"error": error_name, "message": message}))
    return code


def _write_result(path: str, text: str) -> None:
    """Write the result whole or not at all (a temporary file renamed over it): the job reads it as JSON."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as file:
        file.write(text + "\n")
    os.replace(partial, path)


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
        if args.max_parallel_blobs < 1:
            raise InvalidReference("--max-parallel-blobs must be at least 1")
    except InvalidReference as error:
        return _fail(args, type(error).__name__, str(error), 2)
    try:
        sessions = (
            assume_role(args.src_role_arn, args.src_external_id),
            assume_role(args.dst_role_arn, args.dst_external_id),
        )
        result = copy_image(
            args.source,
            args.destination,
            source_session=sessions[0],
            destination_session=sessions[1],
            insecure_registries=tuple(args.insecure_registry),
            progress=ProgressPrinter(sys.stderr),
            max_parallel_blobs=args.max_parallel_blobs,
        )
    except ReplicationError as error:
        return _fail(args, type(error).__name__, str(error), 1)
    except Exception as error:  # a defect, not a registry fault: keep the traceback, still report
        traceback.print_exc()
        return _fail(args, "CopyFailed", f"unexpected {type(error).__name__}: {error}", 1)
    text = result.to_json()
    print(text)
    if args.result_file:
        _write_result(args.result_file, text)
    print(
        f"{result.action}: {result.destination} {result.destination_digest} "
        f"({result.blobs_copied} blobs, {_human(result.bytes_copied)} in {result.seconds:.1f}s)",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `copy` alone, without loading the other sub-commands (a faster start for build jobs)."""
    parser = argparse.ArgumentParser(prog="ecr-replicate-copy")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["copy", *(sys.argv[1:] if argv is None else argv)])
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
