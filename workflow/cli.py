"""`ecr-replicate`: validate, plan, pattern, schema, copy, sync, start, demo.

Every failure is one line on stderr (one JSON object with `--json`), never a traceback unless `--debug`.
Exit codes: 0 success, 1 the operation failed, 2 bad input (config, arguments, request).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from workflow.core.commandline import Parser, report_error

DISTRIBUTION = "ecr-filtered-replication"
COMMAND_MODULES = (
    "workflow.commands.validate",
    "workflow.commands.plan",
    "workflow.commands.pattern",
    "workflow.commands.schema",
    "workflow.engine.copy",
    "workflow.commands.sync",
    "workflow.commands.start",
    "workflow.commands.status",
    "workflow.commands.demo",
)


def package_version() -> str:
    """The installed distribution's version (pyproject.toml is its one source)."""
    from importlib.metadata import PackageNotFoundError, version  # deferred: only for --version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed as a package)"


class VersionAction(argparse.Action):
    """`--version`/`-V`: print the version and exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        print(f"ecr-replicate {package_version()}")
        parser.exit()


def _command_of(arguments: Sequence[str]) -> str | None:
    return next((argument for argument in arguments if not argument.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `command`, only that sub-command is imported (fast start-up)."""
    modules = [name for name in COMMAND_MODULES if name.rsplit(".", 1)[1] == command] or COMMAND_MODULES
    parser = Parser(
        prog="ecr-replicate",
        description="Replicate selected Amazon ECR images across accounts and Regions, digest-preserving.",
        epilog="Exit codes: 0 success, 1 the operation failed, 2 bad input.",
    )
    parser.add_argument("-V", "--version", action=VersionAction, help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(subparsers)
    for subparser in subparsers.choices.values():
        subparser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of a failure"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json, debug = "--json" in arguments, "--debug" in arguments
    try:
        args = build_parser(_command_of(arguments)).parse_args(arguments)
        return int(args.run(args))
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to tell it
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open so exit's flush has somewhere to go
        return 1
    except SystemExit as exited:  # --help, --version
        return exited.code if isinstance(exited.code, int) else 0 if exited.code is None else 1
    except (Exception, KeyboardInterrupt) as error:
        return report_error(error, as_json=as_json, debug=debug).code


if __name__ == "__main__":
    sys.exit(main())
