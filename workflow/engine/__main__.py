"""`python3 -m workflow.engine copy SOURCE DESTINATION [options]`: the copy job's entry point.

The buildspec runs it from the copy job's asset, which holds only workflow.core, workflow.registry and
workflow.engine: the `copy` sub-command of `ecr-replicate` (workflow.engine.copy) with the same arguments,
output, one-line errors and exit codes, and none of the operator's commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from workflow.core.commandline import Parser, report_error
from workflow.engine import copy


def main(argv: Sequence[str] | None = None) -> int:
    """Run `copy ARGS...`; returns the process exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = Parser(prog="ecr-replicate")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    copy.register(subparsers)
    subparsers.choices["copy"].add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of a failure"
    )
    try:
        args = parser.parse_args(arguments)
        return int(args.run(args))
    except SystemExit as exited:  # --help
        return exited.code if isinstance(exited.code, int) else 0 if exited.code is None else 1
    except (Exception, KeyboardInterrupt) as error:
        return report_error(error, as_json="--json" in arguments, debug="--debug" in arguments).code


if __name__ == "__main__":
    sys.exit(main())
