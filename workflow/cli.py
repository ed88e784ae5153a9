"""`ecr-replicate`: validate, plan, pattern, copy, start, sync, demo.

Exit codes: 0 success, 1 the operation failed, 2 invalid input (config, arguments, request).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workflow.exceptions import (
    DestinationNotAllowed,
    InvalidConfig,
    InvalidReference,
    InvalidRequest,
    ReplicationError,
)

COMMAND_MODULES = (
    "workflow.commands.validate",
    "workflow.commands.plan",
    "workflow.commands.pattern",
    "workflow.commands.copy",
    "workflow.commands.sync",
    "workflow.commands.demo",
)
INPUT_ERRORS = (InvalidConfig, InvalidRequest, InvalidReference, DestinationNotAllowed)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="ecr-replicate",
        description="Replicate selected Amazon ECR images across accounts and Regions, digest-preserving.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except INPUT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ReplicationError as error:
        print(f"failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
