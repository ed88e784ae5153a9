"""The bridges that let moto 5.2.5's Step Functions interpreter run the production state machine as AWS does.

moto's interpreter (`stepfunctions.execute_state_machine`) runs statemachine.asl.json for real, with
three gaps, and moto's ECR one more, found by trying (what the local registries lack of ECR, their fronts
add: ecr_front.py):

1. Lambda tasks need Docker unless `lambda.use_docker` is off, and then moto answers every invoke with
   a canned payload. The Lambda bridge replaces `LambdaSimpleBackend.invoke` so that an invoke runs the
   function's configured handler (e.g. `lambdas.plan.handler`) in-process, and an exception comes back the way Lambda reports it: payload
   `{"errorType": <class name>, "errorMessage": ...}` and header `x-amz-function-error: Unhandled`, so
   the ASL's Retry/Catch match the class name. As on Lambda, the handler gets a context whose remaining time
   runs down from the function's configured timeout, and an invocation still running at its timeout ends
   with `Sandbox.Timedout` ("Task timed out after N seconds"; Lambda developer guide, "Configure Lambda
   function timeout": https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html): its thread is
   left behind, as Lambda freezes the sandbox, and its answer is dropped.
2. `arn:aws:states:::codebuild:startBuild.sync` fails with States.Runtime (codebuild is "unsupported").
   The CodeBuild bridge is a task-service class substituted through the interpreter's
   `state_task_service_for`. It runs the build-phase commands of infra/buildspec.yml with bash, in a
   fresh directory, with the StartBuild `EnvironmentVariablesOverride` applied, then returns a
   Build-shaped result whose `ExportedEnvironmentVariables` carry the buildspec's exported variables.
   A command exiting non-zero makes the build FAILED, and the task fails with States.TaskFailed and
   the Build as the cause, as on AWS. A Build larger than Step Functions' 256 KiB payload quota fails
   the task with States.DataLimitExceeded, as AWS does ("Step Functions service quotas").
3. moto lets `States.ALL` catch (and a retrier retry) every error. On AWS, `States.Runtime` (a failed
   path or intrinsic function) and `States.DataLimitExceeded` are terminal: no Retry or Catch applies
   and the execution fails (developer guide, "Handling errors in Step Functions workflows"). The
   terminal-errors bridge makes them so here, or a test would pass where AWS kills the execution.

4. moto's GetAuthorizationToken answers a token that expired on 2015-01-01, so a client would fetch a new one
   for every registry request; ECR's token is valid for 12 hours (Amazon ECR user guide, "Private registry
   authentication": https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html). The token
   bridge dates it 12 hours from now.

Tests can break one destination's build on purpose (`CodeBuildSettings.export_instead`,
`CodeBuildSettings.copier_writes`) to check what the state machine makes of a bad build result.

All are applied by `bridges(...)`, a context manager, and removed on exit. Nothing else is patched
and the production ASL is never changed. moto runs in server mode in this process (see runtime.py),
so the interpreter, the Lambda backend and these bridges share one process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from unittest import mock

import botocore.session
import yaml
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import ActionResult
from moto.ecr.responses import ECRResponse
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.catch.catch_outcome import CatchOutcome
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.retry.retry_outcome import RetryOutcome
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory import (
    state_task_service_for,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from workflow.core.partitions import partition_of

Handler = Callable[[Any, Any], Any]
SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUILD_TIMEOUT_SECONDS = 600
# `.sync` needs the callback endpoint too, which moto sets up only for WaitForTaskToken-capable services.
SYNC_PATTERNS: set[Any] = {ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
# Step Functions service quotas: a state's input, output or a task's result is at most 256 KiB.
PAYLOAD_LIMIT = 256 * 1024
# Errors no Retry or Catch applies to on AWS (developer guide, "Handling errors in Step Functions workflows").
TERMINAL_ERRORS = {StatesErrorNameType.StatesRuntime, StatesErrorNameType.StatesStatesDataLimitExceeded}
COPY_COMMAND = "ecr-replicate"
ECR_TOKEN_LIFETIME = dt.timedelta(hours=12)


TIMED_OUT = "Sandbox.Timedout"


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    deadline: float  # time.monotonic() at which the invocation times out
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        """Time left before the function's timeout ends the invocation."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _error_payload(error_type: str, error: BaseException, context: LambdaContext) -> bytes:
    payload = {
        "errorType": error_type,
        "errorMessage": str(error),
        "requestId": context.aws_request_id,
        "stackTrace": traceback.format_exception(error)[1:],
    }
    return json.dumps(payload).encode()


def _invoke_handler(
    handler_setting: str, body: Any, context: LambdaContext, response_headers: dict[str, str]
) -> bytes:
    """Run a handler the way the Lambda runtime does: an import or handler error becomes an error payload."""
    event = json.loads(body) if body else {}
    try:
        handler = load_handler(handler_setting)
    except Exception as error:  # reported to the interpreter as Lambda reports a broken package
        response_headers["x-amz-function-error"] = "Unhandled"
        return _error_payload("Runtime.ImportModuleError", error, context)
    try:
        result = handler(event, context)
    except Exception as error:  # every handler error is reported to the interpreter, as Lambda does
        response_headers["x-amz-function-error"] = "Unhandled"
        return _error_payload(type(error).__name__, error, context)
    return json.dumps(result).encode()


class HandlerOutput(io.TextIOBase):
    """sys.stdout while the bridges are applied: a handler's prints and logs go to the Lambda log file
    (as they would go to CloudWatch Logs), everything else to the original stdout."""

    def __init__(self, original: Any, log: Any) -> None:
        super().__init__()
        self.original = original
        self.log = log
        self.local = threading.local()

    def write(self, text: str) -> int:
        """Write to the log file inside a handler, to the original stream otherwise."""
        if getattr(self.local, "in_handler", False):
            self.log.write(text)
            self.log.flush()
            return len(text)
        return int(self.original.write(text))

    def flush(self) -> None:
        """Flush the original stream."""
        self.original.flush()

    @contextlib.contextmanager
    def handler_running(self) -> Iterator[None]:
        """Route this thread's output to the log file."""
        self.local.in_handler = True
        try:
            yield
        finally:
            self.local.in_handler = False


def load_handler(handler: str) -> Handler:
    """Import a Lambda `Handler` setting such as `lambdas.plan.handler` (module path, then the function)."""
    module, _, name = handler.rpartition(".")
    if not module:
        raise LookupError(f"Lambda handler {handler!r} is not MODULE.FUNCTION")
    function: Handler = getattr(importlib.import_module(module), name)
    return function


def _lambda_invoke(output: HandlerOutput) -> Callable[..., bytes]:
    def invoke(
        backend: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        function = backend.get_function(function_name, qualifier)
        timeout = float(function.timeout)
        context = LambdaContext(
            function_name=function.function_name,
            invoked_function_arn=function.function_arn,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + timeout,
        )
        answer: list[tuple[bytes, dict[str, str]]] = []

        def run() -> None:
            headers: dict[str, str] = {}
            with output.handler_running():
                answer.append((_invoke_handler(str(function.handler), body, context, headers), headers))

        worker = threading.Thread(target=run, name=f"lambda-{function.function_name}", daemon=True)
        worker.start()
        worker.join(timeout)
        if not answer:
            response_headers["x-amz-function-error"] = "Unhandled"
            message = f"RequestId: {context.aws_request_id} Error: Task timed out after {timeout:.2f} seconds"
            return json.dumps({"errorType": TIMED_OUT, "errorMessage": message}).encode()
        payload, headers = answer[0]
        response_headers.update(headers)
        return payload

    return invoke


@dataclass(frozen=True)
class Buildspec:
    """The parts of a buildspec the bridge runs: build-phase commands, static and exported variables."""

    commands: list[str]
    variables: dict[str, str]
    exported: list[str]

    @classmethod
    def load(cls, path: Path) -> Buildspec:
        """Read a buildspec file; raises ValueError naming what is missing."""
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        try:
            commands = spec["phases"]["build"]["commands"]
        except (KeyError, TypeError):
            raise ValueError(f"{path}: no phases.build.commands") from None
        env = spec.get("env") or {}
        exported = list(env.get("exported-variables") or [])
        bad = [name for name in exported if not SHELL_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"{path}: exported variable name(s) {bad} are not shell variable names")
        variables = {str(k): str(v) for k, v in (env.get("variables") or {}).items()}
        return cls(commands=[str(c) for c in commands], variables=variables, exported=exported)

    def script(self, exports_file: Path) -> str:
        """A bash script: the commands, stopping at the first failure, then the exported values, NUL-separated."""
        exports = "".join(f' "${{{name}-}}"' for name in self.exported)
        collect = f"printf '%s\\0'{exports} > '{exports_file}'\n" if self.exported else ""
        return "set -eo pipefail\n" + "\n".join(self.commands) + "\n" + collect


@dataclass
class BuildRecord:
    """One build the bridge ran: its overrides, status, exported variables, last stderr line and its log
    (stdout and stderr, as CodeBuild would send them to CloudWatch Logs)."""

    build_id: str
    environment: dict[str, str]
    status: str
    exported: dict[str, str]
    failure: str | None
    seconds: float
    log: str = ""


@dataclass
class CodeBuildSettings:
    """What the CodeBuild bridge needs: the project, the buildspec, the base environment of a build."""

    project_name: str
    buildspec: Buildspec
    environment: dict[str, str]
    region: str
    account: str
    builds: list[BuildRecord] = field(default_factory=list)
    _injected: deque[str] = field(default_factory=deque)
    _exports: dict[str, str | None] = field(default_factory=dict)
    _copier_output: dict[str, str | None] = field(default_factory=dict)
    _before: dict[str, Callable[[], None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next_start_builds(self, error: str, times: int = 1) -> None:
        """Make the next `times` StartBuild calls fail with `error` (e.g. a throttling error name)."""
        with self._lock:
            self._injected.extend([error] * times)

    def export_instead(self, destination: str, result: str | None) -> None:
        """The next build whose DESTINATION_IMAGE contains `destination` copies nothing and succeeds,
        exporting `result` as RESULT (None: no RESULT at all), whatever the buildspec would export."""
        with self._lock:
            self._exports[destination] = result

    def copier_writes(self, destination: str, result_file: str | None) -> None:
        """In the next build whose DESTINATION_IMAGE contains `destination`, the copy command copies
        nothing, writes `result_file` to its --result-file (None: writes no file) and exits 0; the rest
        of the buildspec runs as written."""
        with self._lock:
            self._copier_output[destination] = result_file

    def before_build(self, destination: str, hook: Callable[[], None]) -> None:
        """Call `hook()` (test-only) just before the next build whose DESTINATION_IMAGE contains
        `destination` runs, in that build's thread: e.g. a newer push replicated while this copy waits."""
        with self._lock:
            self._before[destination] = hook

    def _take_hook(self, destination: str) -> Callable[[], None] | None:
        with self._lock:
            key = next((key for key in self._before if key in destination), None)
            return self._before.pop(key) if key is not None else None

    def _take(self, overrides: dict[str, str | None], destination: str) -> tuple[bool, str | None]:
        with self._lock:
            for key in list(overrides):
                if key in destination:
                    return True, overrides.pop(key)
        return False, None

    def _take_injected(self) -> str | None:
        with self._lock:
            return self._injected.popleft() if self._injected else None

    def _record(self, record: BuildRecord) -> None:
        with self._lock:
            self.builds.append(record)

    def run_build(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        """Run the buildspec's build phase; returns the Build as GetBuild describes it."""
        build_id = f"{self.project_name}:{uuid.uuid4()}"
        destination = overrides.get("DESTINATION_IMAGE", "")
        hook = self._take_hook(destination)
        if hook is not None:
            hook()
        exported_instead, result = self._take(self._exports, destination)
        if exported_instead:
            now = time.time()
            exported = {} if result is None else {name: result for name in self.buildspec.exported}
            self._record(BuildRecord(build_id, dict(overrides), "SUCCEEDED", exported, None, 0.0))
            return self._build_document(build_id, "SUCCEEDED", overrides, exported, None, now, now)
        stand_in, result_file = self._take(self._copier_output, destination)
        environment = {**self.environment, **self.buildspec.variables, **overrides}
        started = time.time()
        with tempfile.TemporaryDirectory(prefix="codebuild-") as work:
            exports_file = Path(work) / ".exported-variables"
            env = {**environment, "CODEBUILD_BUILD_ID": build_id, "CODEBUILD_SRC_DIR": work}
            script = self.buildspec.script(exports_file)
            if stand_in:
                script = _copier_stand_in(Path(work), result_file) + script
            process = subprocess.run(
                ["bash", "-c", script],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_SECONDS,
                check=False,
            )
            values = exports_file.read_text().split("\0")[:-1] if exports_file.exists() else []
        exported = dict(zip(self.buildspec.exported, values, strict=False))
        stderr_lines = process.stderr.strip().splitlines()
        failure = None
        if process.returncode != 0:
            failure = stderr_lines[-1] if stderr_lines else f"exit status {process.returncode}"
        status = "FAILED" if failure else "SUCCEEDED"
        ended = time.time()
        log = process.stdout + process.stderr
        self._record(BuildRecord(build_id, dict(overrides), status, exported, failure, ended - started, log))
        return self._build_document(build_id, status, overrides, exported, failure, started, ended)

    def _build_document(
        self,
        build_id: str,
        status: str,
        overrides: Mapping[str, str],
        exported: Mapping[str, str],
        failure: str | None,
        started: float,
        ended: float,
    ) -> dict[str, Any]:
        build_phase: dict[str, Any] = {"PhaseType": "BUILD", "PhaseStatus": status}
        if failure:
            build_phase["Contexts"] = [{"StatusCode": "COMMAND_EXECUTION_ERROR", "Message": failure}]
        return {
            "Id": build_id,
            "Arn": partition_of(self.region).arn("codebuild", self.region, self.account, f"build/{build_id}"),
            "ProjectName": self.project_name,
            "BuildStatus": status,
            "BuildComplete": True,
            "CurrentPhase": "COMPLETED",
            "StartTime": started,
            "EndTime": ended,
            "Phases": [build_phase],
            "Environment": {
                "ComputeType": "BUILD_LAMBDA_1GB",
                "EnvironmentVariables": [
                    {"Name": name, "Value": value, "Type": "PLAINTEXT"} for name, value in overrides.items()
                ],
            },
            "ExportedEnvironmentVariables": [
                {"Name": name, "Value": value} for name, value in exported.items()
            ],
        }


def _copier_stand_in(work: Path, result_file: str | None) -> str:
    """A bash function shadowing the copy command: it writes `result_file` to --result-file, or nothing."""
    write = ":"
    if result_file is not None:
        source = work / ".stand-in-result"
        source.write_text(result_file, encoding="utf-8")
        write = f'cat "{source}" > "$out"'
    return (
        f"{COPY_COMMAND}() {{ local out=''; while [ $# -gt 0 ]; do "
        f'[ "$1" = --result-file ] && out="$2"; shift; done; {write}; }}\n'
    )


def _start_build_parameters() -> set[str]:
    model = botocore.session.get_session().get_service_model("codebuild")
    shape = model.operation_model("StartBuild").input_shape
    assert shape is not None
    members = shape.members
    return {name[0].upper() + name[1:] for name in members}


class CodeBuildBridge(StateTaskServiceCallback):
    """`codebuild:startBuild(.sync)` for moto's interpreter: runs the buildspec's build phase locally."""

    settings: CodeBuildSettings

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns=SYNC_PATTERNS)

    def _get_supported_parameters(self) -> set[str] | None:
        if self.resource.api_action.lower() != "startbuild":
            return None
        return _start_build_parameters()

    def _task_failure(
        self, env: Any, error: CustomErrorName | StatesErrorName, name: str, cause: str
    ) -> Exception:
        details = TaskFailedEventDetails(
            resource=self._get_sfn_resource(),
            resourceType=self._get_sfn_resource_type(),
            error=name,
            cause=cause,
        )
        event = FailureEvent(
            env=env,
            error_name=error,
            event_type=HistoryEventType.TaskFailed,
            event_details=cast(EventDetails, {"taskFailedEventDetails": details}),
        )
        return FailureEventException(event)

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        injected = self.settings._take_injected()
        if injected:
            code = injected.removeprefix("CodeBuild.")
            cause = (
                f"Rate exceeded (Service: AWSCodeBuild; Status Code: 400; Error Code: {code}; Proxy: null)"
            )
            raise self._task_failure(env, CustomErrorName(injected), injected, cause)
        project = normalised_parameters.get("ProjectName")
        if project != self.settings.project_name:
            name = "CodeBuild.ResourceNotFoundException"
            raise self._task_failure(env, CustomErrorName(name), name, f"Project cannot be found: {project}")
        overrides = {
            item["Name"]: str(item.get("Value", ""))
            for item in normalised_parameters.get("EnvironmentVariablesOverride", [])
        }
        env.stack.append({"Build": self.settings.run_build(overrides)})

    def _build_sync_resolver(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> Callable[[], Any]:
        output = env.stack.pop()

        def resolve() -> Any:
            size = len(json.dumps(output, separators=(",", ":")).encode())
            if size > PAYLOAD_LIMIT:
                limit = StatesErrorNameType.StatesStatesDataLimitExceeded
                cause = f"the Build is {size} bytes, over the {PAYLOAD_LIMIT}-byte payload quota"
                raise self._task_failure(env, StatesErrorName(typ=limit), limit.to_name(), cause)
            if output["Build"]["BuildStatus"] == "SUCCEEDED":
                return output
            error = StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
            raise self._task_failure(
                env, error, StatesErrorNameType.StatesTaskFailed.to_name(), json.dumps(output["Build"])
            )

        return resolve


def _service_for(settings: CodeBuildSettings) -> Callable[[str], Any]:
    def service_for(service_name: str) -> Any:
        if service_name == "codebuild":
            bridge = CodeBuildBridge()
            bridge.settings = settings
            return bridge
        return state_task_service_for(service_name)

    return service_for


def _terminal(failure_event: FailureEvent) -> bool:
    name = failure_event.error_name
    return isinstance(name, StatesErrorName) and name.typ in TERMINAL_ERRORS


def _retry_unless_terminal(original: Callable[..., Any]) -> Callable[..., Any]:
    def handle_retry(state: ExecutionState, env: Any, failure_event: FailureEvent) -> Any:
        return RetryOutcome.CannotRetry if _terminal(failure_event) else original(state, env, failure_event)

    return handle_retry


def _catch_unless_terminal(original: Callable[..., Any]) -> Callable[..., Any]:
    def handle_catch(state: ExecutionState, env: Any, failure_event: FailureEvent) -> None:
        if _terminal(failure_event):
            env.stack.append(CatchOutcome.NotCaught)
            return
        original(state, env, failure_event)

    return handle_catch


def _token_valid_for_12_hours(original: Callable[[ECRResponse], ActionResult]) -> Callable[..., ActionResult]:
    def get_authorization_token(response: ECRResponse) -> ActionResult:
        answer = original(response)
        result = cast(dict[str, Any], answer.result)
        expires = dt.datetime.now(dt.UTC) + ECR_TOKEN_LIFETIME
        return ActionResult(
            {
                **result,
                "authorizationData": [{**data, "expiresAt": expires} for data in result["authorizationData"]],
            }
        )

    return get_authorization_token


@contextlib.contextmanager
def bridges(codebuild: CodeBuildSettings, lambda_log: Path) -> Iterator[None]:
    """Apply the bridges for the duration of the context.

    A Lambda invoke runs the function's configured `Handler` (e.g. `lambdas.plan.handler`), imported in
    this process on first use; what handlers print or log goes to `lambda_log`, as to CloudWatch Logs.
    """
    with lambda_log.open("a", encoding="utf-8") as log:
        output = HandlerOutput(sys.stdout, log)
        with (
            mock.patch.object(sys, "stdout", output),
            mock.patch.object(LambdaSimpleBackend, "invoke", _lambda_invoke(output)),
            mock.patch.object(state_task_factory, "state_task_service_for", _service_for(codebuild)),
            mock.patch.object(
                ExecutionState, "_handle_retry", _retry_unless_terminal(ExecutionState._handle_retry)
            ),
            mock.patch.object(
                ExecutionState, "_handle_catch", _catch_unless_terminal(ExecutionState._handle_catch)
            ),
            mock.patch.object(
                ECRResponse,
                "get_authorization_token",
                _token_valid_for_12_hours(ECRResponse.get_authorization_token),
            ),
        ):
            yield
