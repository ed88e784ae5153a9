"""The Distributed Map as AWS runs it, where moto 5.2.5's interpreter is kinder or leaves it out (found by trying).

moto runs a Distributed Map's children (each item through the ItemProcessor, MaxConcurrency at once), reads
ItemReader's S3 object (JSON, CSV) and keeps the children's events out of the parent's history, as AWS does. Three
things differ, each of which would let a test pass (or fail) where AWS behaves otherwise:

1. **ResultWriter writes no results.** moto puts a `manifest.json` whose `ResultFiles` are all empty and drops the
   children's outputs. AWS writes every child execution, grouped by status, to `<Prefix>/<map run id>/` as
   `SUCCEEDED_<n>.json`, `FAILED_<n>.json` and `PENDING_<n>.json`, JSON arrays of `{"ExecutionArn", "Input",
   "InputDetails", "Name", "Output", "OutputDetails", "RedriveCount", "RedriveStatus", "RedriveStatusReason",
   "StartDate", "StateMachineArn", "Status", "StopDate"}` (`Input` and `Output` as JSON text; a failed child has
   `Error` and `Cause` instead of `Output`), and lists them in the manifest with their `Key` and `Size`
   (developer guide, "ResultWriter (Map)": https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
   Here the children's inputs, outputs, errors and times are kept per Map Run, and the manifest and files are
   written in that format.
2. **No failure threshold.** moto ends the Map Run SUCCEEDED however many children failed. AWS fails it with
   `States.ExceedToleratedFailureThreshold` once the failed (or timed-out, or aborted) children exceed
   `ToleratedFailureCount` or `ToleratedFailurePercentage`, both 0 unless set: by default, one failed child fails
   the Map state (developer guide, "Setting failure thresholds for Distributed Map states"). Here a threshold set
   to a non-zero value applies, and with none set any failure fails the Map Run, as there.
3. **ResultWriter's paths read the children's outputs.** moto evaluates ResultWriter's `Parameters` (`"Bucket.$"`,
   `"Prefix.$"`) against the list of the children's outputs; AWS against the Map state's input, as ItemReader's
   (developer guide, "ResultWriter (Map)": the bucket and prefix may come from the state input by a path). Here they
   are evaluated against the state input.

And one where moto is stricter: its grammar refuses an integer `ToleratedFailurePercentage` (`100`), which AWS
takes (a number from 0 to 100, integers in the guide's examples); `parseable()` writes it as `100.0` in the text
moto parses, and the ASL keeps its integer.

`distributed_map()` applies both for the duration of the context, beside the other bridges (bridges.py).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from unittest import mock

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
    resource_eval_s3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
    ResultWriter,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped

THRESHOLD_ERROR = StatesErrorNameType.StatesExceedToleratedFailureThreshold
THRESHOLD_CAUSE = "The specified tolerated failure threshold was exceeded"
STATUSES = ("SUCCEEDED", "FAILED", "PENDING")
INTEGER_PERCENTAGE = re.compile(r'("ToleratedFailurePercentage"\s*:\s*)(\d+)(?=\s*[,}])')


def parseable(definition: str) -> str:
    """The definition as moto's parser takes it: an integer ToleratedFailurePercentage written as a decimal."""
    return INTEGER_PERCENTAGE.sub(r"\1\2.0", definition)


@dataclass
class ChildRun:
    """One child execution of a Map Run, as ResultWriter reports it."""

    name: str
    input: Any
    started: datetime
    status: str = "PENDING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stopped: datetime | None = None


@dataclass
class MapRunChildren:
    """The children of one Map Run, in the order they started."""

    runs: list[ChildRun] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, run: ChildRun) -> None:
        """Record a child as it starts."""
        with self.lock:
            self.runs.append(run)


_current = threading.local()  # the child a worker thread is running: its input once the ItemSelector made it


def _children(record: Any) -> MapRunChildren:
    children = getattr(record, "_local_children", None)
    if children is None:
        children = MapRunChildren()
        record._local_children = children
    return children


def _eval_input(original: Callable[..., None]) -> Callable[..., None]:
    def eval_input(worker: DistributedItemProcessorWorker, env_frame: Any) -> None:
        original(worker, env_frame)
        run = getattr(_current, "run", None)
        if run is not None:
            run.input = env_frame.states.get_input()

    return eval_input


def _eval_job(original: Callable[..., None]) -> Callable[..., None]:
    def eval_job(worker: DistributedItemProcessorWorker, env: Any, job: Any) -> None:
        run = ChildRun(name=str(uuid.uuid4()), input=job.job_input, started=datetime.now(UTC))
        _children(worker._map_run_record).add(run)
        _current.run = run
        try:
            original(worker, env, job)
        finally:
            _current.run = None
            run.stopped = datetime.now(UTC)
        state = env.program_state()
        if isinstance(state, ProgramError):
            details = state.error or {}
            run.status, run.error, run.cause = "FAILED", details.get("error"), details.get("cause")
        elif isinstance(state, ProgramStopped):
            run.status, run.error, run.cause = "FAILED", state.error or "States.Aborted", state.cause
        elif job.job_output is None:
            run.status, run.error = "FAILED", "States.Runtime"
        else:
            run.status, run.output = "SUCCEEDED", job.job_output

    return eval_job


def _exceeded(failed: int, total: int, count: int, percentage: float) -> bool:
    """AWS's rule: a set threshold (non-zero here) that the failures exceed; with none set, any failure."""
    if not failed:
        return False
    if not count and not percentage:
        return True
    return bool(count and failed > count) or bool(percentage and 100.0 * failed / max(total, 1) > percentage)


def _map_run(original: Callable[..., None]) -> Callable[..., None]:
    def map_run(component: DistributedIterationComponent, env: Any, eval_input: Any) -> None:
        original(component, env, eval_input)
        runs = _children(eval_input.map_run_record).runs
        failed = sum(1 for run in runs if run.status != "SUCCEEDED")
        if _exceeded(
            failed, len(runs), eval_input.tolerated_failure_count, eval_input.tolerated_failure_percentage
        ):
            details = ExecutionFailedEventDetails(error=THRESHOLD_ERROR.to_name(), cause=THRESHOLD_CAUSE)
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=THRESHOLD_ERROR),
                    event_type=HistoryEventType.MapRunFailed,
                    event_details=cast(EventDetails, {"executionFailedEventDetails": details}),
                )
            )

    return map_run


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def result_entry(run: ChildRun, map_state_machine_arn: str) -> dict[str, Any]:
    """One child execution as ResultWriter writes it."""
    execution = map_state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{run.name}"
    entry: dict[str, Any] = {
        "ExecutionArn": execution,
        "Input": _text(run.input),
        "InputDetails": {"Included": True},
        "Name": run.name,
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE" if run.status == "SUCCEEDED" else "REDRIVABLE",
        "StartDate": run.started.isoformat(),
        "StateMachineArn": map_state_machine_arn,
        "Status": run.status,
        "StopDate": (run.stopped or run.started).isoformat(),
    }
    if run.status == "SUCCEEDED":
        entry["Output"] = _text(run.output)
        entry["OutputDetails"] = {"Included": True}
        entry["RedriveStatusReason"] = "Execution is SUCCEEDED and cannot be redriven"
    else:
        entry["Error"] = run.error or ""
        entry["Cause"] = run.cause or ""
    return entry


def _put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    """ResultWriter's `s3:putObject`: the manifest and one file per status of the Map Run's children."""
    parameters = env.stack.pop()
    env.stack.pop()  # the children's outputs, which the files below hold with their inputs and statuses
    s3 = resource_eval_s3.ResourceEvalS3._get_s3_client(resource_runtime_part, state_credentials)
    record = env.map_run_record_pool_manager.get_all().pop()
    prefix = str(parameters.get("Prefix") or "")
    prefix = f"{prefix}/" if prefix and not prefix.endswith("/") else prefix
    run_id = record.map_run_arn.split(":")[-1]
    bucket = parameters["Bucket"]
    files: dict[str, list[dict[str, Any]]] = {status: [] for status in STATUSES}
    runs = _children(record).runs
    for status in STATUSES:
        entries = [result_entry(run, record.map_state_machine_arn) for run in runs if run.status == status]
        if entries:
            key = f"{prefix}{run_id}/{status}_0.json"
            body = json.dumps(entries).encode()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn, "ResultFiles": files}
    key = f"{prefix}{run_id}/manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode())
    env.stack.append({"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": key}})


def _write_results(writer: ResultWriter, env: Any) -> None:
    """ResultWriter's evaluation, its Parameters' paths read from the Map state's input (not the outputs)."""
    outputs = env.stack.pop()
    env.stack.append(env.states.get_input())
    writer.parargs.eval(env=env)
    parameters = env.stack.pop()
    env.stack.pop()
    env.stack.extend([outputs, parameters])
    writer.resource_eval.eval_resource(env=env)


@contextlib.contextmanager
def distributed_map() -> Iterator[None]:
    """Make moto's Distributed Map write its results and honour its failure threshold, as AWS does."""
    worker, component = DistributedItemProcessorWorker, DistributedIterationComponent
    with (
        mock.patch.object(worker, "_eval_input", _eval_input(worker._eval_input)),
        mock.patch.object(worker, "_eval_job", _eval_job(worker._eval_job)),
        mock.patch.object(component, "_map_run", _map_run(component._map_run)),
        mock.patch.object(resource_eval_s3.ResourceEvalS3, "_handle_put_object", staticmethod(_put_object)),
        mock.patch.object(ResultWriter, "_eval_body", _write_results),
    ):
        yield
