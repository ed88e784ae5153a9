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
    "workflow.commands.start",
    "workflow.commands.status",
    "workflow.commands.demo",
)
INPUT_ERRORS = (InvalidConfig, InvalidRequest, InvalidReference, DestinationNotAllowed)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `command`, only that sub-command is imported (fast start-up)."""
    modules = [name for name in COMMAND_MODULES if name.rsplit(".", 1)[1] == command] or COMMAND_MODULES
    parser = argparse.ArgumentParser(
        prog="ecr-replicate",
        description="Replicate selected Amazon ECR images across accounts and Regions, digest-preserving.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments[0] if arguments else None).parse_args(arguments)
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
