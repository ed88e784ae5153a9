"""What the sub-commands share: argument types, and how a failure is reported (one line or one JSON object).

Exit codes: 0 success, 1 the operation failed, 2 bad input (config, arguments, request).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import NoReturn, TextIO

from workflow.core.exceptions import (
    DestinationNotAllowed,
    InvalidConfig,
    InvalidReference,
    InvalidRequest,
    ReplicationError,
)

INPUT_ERRORS = (InvalidConfig, InvalidRequest, InvalidReference, DestinationNotAllowed)
NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "or run where a role provides them"
)


class UsageError(Exception):
    """The command line itself is wrong (argparse's own message)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (and reported in one line by `report_error`), not printed."""

    def error(self, message: str) -> NoReturn:
        """Raise UsageError naming the command and argparse's message."""
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


@dataclass(frozen=True)
class Failure:
    """A failure as the CLI reports it: an error name, a one-line message, the exit code."""

    error: str
    message: str
    code: int
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The text form: `error: MESSAGE` for bad input, `failed: NAME: MESSAGE` for a failed operation."""
        if self.code == 2:
            return f"error: {self.message}"
        return f"failed: {self.error}: {self.message}"

    def json(self) -> str:
        """The `--json` form: one object with `error` and `message` (and `problems` for a config)."""
        body: dict[str, object] = {"error": self.error, "message": self.message}
        if self.problems:
            body["problems"] = self.problems
        return json.dumps(body)


def one_line(text: str) -> str:
    """`text` with its lines joined by '; ' (messages from YAML and botocore span several)."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or "(no message)"


def _botocore_failure(error: BaseException) -> Failure | None:
    botocore = sys.modules.get("botocore.exceptions")  # loaded only if boto3 was used
    if botocore is None:
        return None
    if isinstance(error, botocore.NoCredentialsError | botocore.PartialCredentialsError):
        return Failure("NoCredentials", NO_CREDENTIALS, 1)
    if isinstance(error, botocore.ClientError):
        code = str(error.response.get("Error", {}).get("Code") or "ClientError")
        return Failure(code, one_line(str(error)), 1)
    if isinstance(error, botocore.BotoCoreError):
        return Failure(type(error).__name__, one_line(str(error)), 1)
    return None


def failure_of(error: BaseException) -> Failure:
    """How `error` is reported: its name, a one-line message and the exit code."""
    name = type(error).__name__
    if isinstance(error, UsageError):
        return Failure("InvalidArguments", one_line(str(error)), 2)
    if isinstance(error, InvalidConfig):
        problems = [one_line(problem) for problem in error.problems]
        return Failure(name, "invalid replication config: " + "; ".join(problems), 2, problems)
    if isinstance(error, INPUT_ERRORS):
        return Failure(name, one_line(str(error)), 2)
    if isinstance(error, ReplicationError):
        return Failure(name, one_line(str(error)), 1)
    if isinstance(error, KeyboardInterrupt):
        return Failure("Interrupted", "interrupted", 130)
    botocore = _botocore_failure(error)
    if botocore is not None:
        return botocore
    if isinstance(error, OSError):
        return Failure(name, one_line(str(error)), 1)
    return Failure("InternalError", f"unexpected {name}: {one_line(str(error))}", 1)


def report(failure: Failure, *, as_json: bool, stream: TextIO | None = None) -> int:
    """Print `failure` on stderr (text or JSON); returns its exit code."""
    print(failure.json() if as_json else failure.line(), file=stream or sys.stderr)
    return failure.code


def report_error(
    error: BaseException, *, as_json: bool, debug: bool, stream: TextIO | None = None
) -> Failure:
    """Report `error` on stderr, with its traceback first under --debug; returns how it was reported."""
    failure = failure_of(error)
    if debug:
        traceback.print_exception(error, file=stream or sys.stderr)
    report(failure, as_json=as_json, stream=stream)
    return failure


def positive_int(value: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return number


def positive_float(value: str) -> float:
    """An argparse type: a number > 0."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return number


def add_json_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """`--json`: results on stdout as JSON, errors as one JSON object on stderr."""
    parser.add_argument(
        "--json", action="store_true", help=f"print {what} as JSON; errors as one JSON object on stderr"
    )
