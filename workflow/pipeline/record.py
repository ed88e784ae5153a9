"""What a state produced -> a small, bounded document: a destination's record, or an execution's error.

The state machine does not parse anything itself: a JSONPath or intrinsic function that meets data
it cannot handle raises States.Runtime, which no Catch can catch (Step Functions developer guide,
"Handling errors in Step Functions workflows"), and the whole execution would die with every other
destination's record. So the Map iteration hands its whole state to the Record function, which reads:

- a copy build's output: the RESULT variable the build exported (`copy_record`);
- a caught error, from Precheck or Copy (`failure_record`);
- a Plan error, for the execution's Fail state (`execution_error`).

Anything malformed becomes a failed record with a named error (CopyResultInvalid), never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from workflow.core.documents import load_json
from workflow.core.exceptions import CopyFailed, CopyResultInvalid
from workflow.core.grammar import fit, shown
from workflow.models.payloads import CopyResult, Target, TargetResult
from workflow.pipeline.request import parse_time
from workflow.pipeline.summary import CAUSE_LIMIT, FAILURE_CAUSE_LIMIT, short_cause

RESULT_VARIABLE = "RESULT"
# The largest RESULT read (infra/buildspec.yml refuses to export a larger one). A copy result is a few
# hundred bytes; the limit keeps the build's output, and so the iteration's state, far below Step
# Functions' 256 KiB payload quota ("Step Functions service quotas"), which a Catch cannot catch either.
RESULT_LIMIT = 32 * 1024
ERROR_NAME_LIMIT = 128
BUILD_TASK_FAILED = "States.TaskFailed"
MAX_BUILD_SECONDS = 8 * 3600  # longer than any build the copy project allows (EC2: 2 hours)


def record(state: Mapping[str, Any]) -> TargetResult:
    """The record of one Map iteration: from its caught error if it has one, else from its copy build."""
    if "error" in state:
        return failure_record(state)
    return copy_record(state)


def copy_record(state: Mapping[str, Any]) -> TargetResult:
    """The record of a copy build that succeeded: its RESULT read as a CopyResult or as `{error, message}`."""
    target = Target.model_validate(state["target"])
    digest = _prechecked_digest(state)
    build = _build(state.get("copy"))
    try:
        result = _result(build)
    except CopyResultInvalid as error:
        return _failed(target, digest, type(error).__name__, f"{error} ({_build_name(build)})", build)
    if "error" in result:
        name = result["error"]
        if not isinstance(name, str) or not name.isidentifier() or len(name) > ERROR_NAME_LIMIT:
            return _failed(
                target,
                digest,
                CopyResultInvalid.__name__,
                f"RESULT names an error that is not an error name: {shown(name)} ({_build_name(build)})",
                build,
            )
        return _failed(target, digest, name, short_cause(str(result.get("message", ""))) or name, build)
    try:
        copied = CopyResult.model_validate(result)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'RESULT'}: {item['msg']}"
            for item in error.errors()[:3]
        )
        return _failed(
            target,
            digest,
            CopyResultInvalid.__name__,
            f"RESULT is not a copy result: {problems} ({_build_name(build)})",
            build,
        )
    return TargetResult(
        **_where(target),
        status=copied.action,
        digest=copied.destination_digest,
        bytes_copied=copied.bytes_copied,
        blobs_copied=copied.blobs_copied,
        blobs_skipped=copied.blobs_skipped,
        seconds=copied.seconds,
        finished_at=parse_time(copied.finished_at),
        referrers_refused=copied.referrers_refused,
        refused_referrers=_refused(copied),
        build_seconds=build_seconds(build),
        bytes_in_region=min(copied.bytes_in_region, copied.bytes_copied),
        relay_seconds=copied.relay_seconds,
    )


def _refused(copied: CopyResult) -> str | None:
    """`DIGEST (ARTIFACT TYPE), ...` of the referrers a copy's destination refused, bounded; None if none."""
    if not copied.referrers_refused:
        return None
    named = ", ".join(
        f"{r.digest} ({r.artifact_type or 'no artifact type'})" for r in copied.refused_referrers
    )
    more = copied.referrers_refused - len(copied.refused_referrers)
    return _cut(named + (f", and {more} more" if more > 0 else ""), CAUSE_LIMIT)


def failure_record(state: Mapping[str, Any]) -> TargetResult:
    """The record of an iteration whose Precheck or Copy failed: the error's name and a bounded cause."""
    target = Target.model_validate(state["target"])
    error = _error(state["error"])
    name, cause = error["Error"], error["Cause"]
    build: dict[str, Any] = {}
    if name == BUILD_TASK_FAILED and "copy" not in state and "precheck" in state:
        # The build failed before exporting a result (install, timeout, a crash): a copy failure.
        name = CopyFailed.__name__
        build = _build_in(cause)
    return _failed(target, _prechecked_digest(state), name, short_cause(cause) or name, build)


def execution_error(state: Mapping[str, Any]) -> dict[str, str]:
    """A Plan error (`{Error, Cause}`) as the execution's error name and a readable, bounded cause."""
    error = _error(state)
    return {
        "error": error["Error"],
        "cause": short_cause(error["Cause"], FAILURE_CAUSE_LIMIT) or error["Error"],
    }


def _error(value: Any) -> dict[str, str]:
    """`{Error, Cause}` as a Catch writes it, each a string (a missing one is named as missing)."""
    data = value if isinstance(value, Mapping) else {}
    name = data.get("Error")
    cause = data.get("Cause")
    return {
        "Error": _cut(name, ERROR_NAME_LIMIT) if isinstance(name, str) and name else "States.Unknown",
        "Cause": cause if isinstance(cause, str) else json.dumps(cause),
    }


def _build(output: Any) -> dict[str, Any]:
    build = output.get("Build") if isinstance(output, Mapping) else None
    return build if isinstance(build, dict) else {}


def _build_in(cause: str) -> dict[str, Any]:
    """The Build a failed `.sync` task carries as its cause, or {} (a cause cut short is not JSON)."""
    try:
        data = load_json(cause)
    except ValueError:
        return {}
    return _build(data) or (data if isinstance(data, dict) and "BuildStatus" in data else {})


def build_seconds(build: Mapping[str, Any]) -> float:
    """How long the build ran, from its StartTime and EndTime (epoch seconds, or milliseconds as Step Functions
    writes dates); 0 when either is missing or the span is not a build's (over MAX_BUILD_SECONDS)."""
    start, end = build.get("StartTime"), build.get("EndTime")
    if not isinstance(start, int | float) or not isinstance(end, int | float) or isinstance(start, bool):
        return 0.0
    scale = 1000.0 if max(start, end) > 1e11 else 1.0
    span = (float(end) - float(start)) / scale
    return round(span, 3) if 0 <= span <= MAX_BUILD_SECONDS else 0.0


def _build_arn(build: Mapping[str, Any]) -> str | None:
    arn = build.get("Arn")
    return arn if isinstance(arn, str) else None


def _build_name(build: Mapping[str, Any]) -> str:
    return f"build {build.get('Id') or 'with no id'}"


def _result(build: Mapping[str, Any]) -> dict[str, Any]:
    """The build's RESULT as a JSON object; CopyResultInvalid says what is wrong with it."""
    variables = build.get("ExportedEnvironmentVariables")
    values = [
        item.get("Value")
        for item in (variables if isinstance(variables, list) else [])
        if isinstance(item, Mapping) and item.get("Name") == RESULT_VARIABLE
    ]
    if not values or values[0] is None:
        raise CopyResultInvalid(f"the copy build exported no {RESULT_VARIABLE}")
    value = values[0]
    if not isinstance(value, str) or not value.strip():
        raise CopyResultInvalid(f"the copy build exported an empty {RESULT_VARIABLE}")
    size = len(value.encode("utf-8", "replace"))
    if size > RESULT_LIMIT:
        raise CopyResultInvalid(
            f"the copy build exported a {RESULT_VARIABLE} of {size:,} bytes, more than the {RESULT_LIMIT:,} read"
        )
    try:
        result = load_json(value, max_bytes=RESULT_LIMIT)
    except ValueError as error:
        raise CopyResultInvalid(f"{RESULT_VARIABLE} {error}: {shown(value)}") from None
    if not isinstance(result, dict):
        raise CopyResultInvalid(f"{RESULT_VARIABLE} is JSON but not an object: {shown(value)}")
    return result


def _prechecked_digest(state: Mapping[str, Any]) -> str | None:
    precheck = state.get("precheck")
    record_ = precheck.get("record") if isinstance(precheck, Mapping) else None
    digest = record_.get("digest") if isinstance(record_, Mapping) else None
    return digest if isinstance(digest, str) else None


def _where(target: Target) -> dict[str, Any]:
    return {
        "account": target.account,
        "region": target.region,
        "repository": target.repository,
        "tag": target.tag,
        "source": target.source,
    }


def _failed(
    target: Target, digest: str | None, error: str, cause: str, build: Mapping[str, Any]
) -> TargetResult:
    return TargetResult(
        **_where(target),
        status="failed",
        digest=digest,
        error=error,
        cause=fit(cause, CAUSE_LIMIT),  # as JSON, escapes counted: 100 records stay far inside 256 KiB
        build_arn=_build_arn(build),
        build_seconds=build_seconds(build),
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
