"""Record every AWS API call made through botocore, with the component that made it, as JSON lines.

`install(path)` hooks `botocore.session.Session.__init__`, so every session created afterwards (boto3's
default session, the sessions `workflow.engine.roles.assume_role` builds from STS credentials, moto's) gets
two handlers: `before-parameter-build` keeps the API parameters in the request context and
`before-call` writes one `call` record (service, operation, parameters, Region, access key,
component). AssumeRole answers add an `assumed` record (access key -> role ARN), so a call signed
with those credentials is attributed to the role that was assumed; GetSecretValue answers holding an
access key pair (a destination in another partition) add a `secret` record (access key id -> the secret's
ARN; never the secret key), so a call signed with that pair is attributed to the principal the secret is for.

Registry-protocol requests are IAM actions too. `install` also wraps `Transport.request` (workflow/registry),
where every registry request is made: a request from a client that authenticates the ECR way (a token from
GetAuthorizationToken, for an ECR host or an endpoint standing for one) writes a `registry` record (the
account and Region of the registry, method, path, whether it carries a body, the access key of the
credentials that get the token, component). The copy job runs as a subprocess in the local runtime:
`tests/iam/site/sitecustomize.py` calls `install` there, from the environment.

Each record names its world: the test directory whose test made it (`tests/unit`, `tests/e2e`, ...), from
PYTEST_CURRENT_TEST, which subprocesses inherit; the coverage test synthesizes one app per world, so the config
one suite runs with (a repository gated there) does not hide what another needs.

A call's component is the outermost entry point on its stack (e.g. `lambdas.precheck` or
`workflow.engine.copy`), or the one of the thread that started the current thread.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import botocore.session

from workflow.registry.auth import ecr_registry_of
from workflow.registry.transport import Transport

RECORD_ENV = "ECR_REPLICATE_IAM_RECORD"  # this process's file (its subprocesses write there too)
RECORDS_ENV = "ECR_REPLICATE_IAM_RECORDS"  # the folder of every process's file, for the coverage test
# The local runtime's registries several accounts share (workflow/local/moto_server.py SHARED_REGISTRIES_ENV;
# not imported: this module loads in every subprocess, the copy job's included, and that one loads moto).
SHARED_REGISTRIES_ENV = "ECR_REPLICATE_LOCAL_SHARED_REGISTRIES"
# Entry modules -> component; (module, function) entries cover unit tests that call the workflow directly.
ENTRY_MODULES = {
    "lambdas.plan": "Plan",
    "lambdas.gate": "Gate",
    "lambdas.precheck": "Precheck",
    "lambdas.record": "Record",
    "lambdas.summarize": "Summarize",
    "lambdas.reconcile": "Reconcile",
    "lambdas.relay": "Relay",
    "workflow.engine.copy": "Copy",
    "workflow.commands.sync": "Sync",
    "workflow.commands.status": "Status",
}
ENTRY_FUNCTIONS = {
    ("workflow.pipeline.precheck", "check_target"): "Precheck",
    ("workflow.pipeline.gate", "run"): "Gate",
    ("workflow.ops.sync.syncer", "reconcile"): "Reconcile",
    ("workflow.ops.sync.syncer", "sync"): "Sync",
    ("workflow.ops.status", "image_status"): "Status",
}
MAX_TEXT = 300
_installed: dict[str, Any] = {}
_lock = threading.Lock()


def component_of(frame: FrameType | None) -> str | None:
    """The component whose entry point is outermost on the stack of `frame`, else the thread's."""
    found = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        name = ENTRY_MODULES.get(module) or ENTRY_FUNCTIONS.get((module, frame.f_code.co_name))
        if name:
            found = name
        frame = frame.f_back
    return found or getattr(threading.current_thread(), "_iam_component", None)


def _small(value: Any) -> Any:
    """A parameter value cut to what the check needs (ARNs, names, ids), JSON-safe."""
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list):
        return [_small(item) for item in value[:10]]
    if isinstance(value, dict):
        return {str(k): _small(v) for k, v in list(value.items())[:20]}
    return type(value).__name__


def world() -> str:
    """The test directory of the test running now (`tests/e2e`), or "" outside a test."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return "/".join(current.split("::", 1)[0].split("/")[:2]) if current else ""


def _write(record: dict[str, Any]) -> None:
    record["world"] = world()
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(_installed["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one O_APPEND write per record: processes and threads never interleave
    finally:
        os.close(fd)


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["iam_record_params"] = params


def _before_call(model: Any, request_signer: Any, context: dict[str, Any], **_: Any) -> None:
    credentials = getattr(request_signer, "_credentials", None)
    params = context.get("iam_record_params") or {}
    _write(
        {
            "kind": "call",
            "signing_name": model.service_model.signing_name,
            "service": model.service_model.service_name,
            "operation": model.name,
            "params": _small(params),
            "region": request_signer.region_name,
            "access_key": getattr(credentials, "access_key", None),
            "component": component_of(sys._getframe(1)),
            "pid": os.getpid(),
        }
    )


def _after_assume_role(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    credentials = parsed.get("Credentials") or {}
    params = context.get("iam_record_params") or {}
    if credentials.get("AccessKeyId") and params.get("RoleArn"):
        _write({"kind": "assumed", "access_key": credentials["AccessKeyId"], "role_arn": params["RoleArn"]})


def _after_get_secret_value(parsed: dict[str, Any], **_: Any) -> None:
    try:
        value = json.loads(parsed.get("SecretString") or "")
    except ValueError:
        return
    if isinstance(value, dict) and isinstance(value.get("AccessKeyId"), str) and parsed.get("ARN"):
        _write({"kind": "secret", "access_key": value["AccessKeyId"], "secret_arn": parsed["ARN"]})


def _token_access_key(transport: Transport) -> str | None:
    """The access key of the credentials the transport's ECR token comes through (None without ECR auth)."""
    provider = getattr(transport.auth, "_ecr", None)
    if provider is None:
        return None
    credentials = provider._client._request_signer._credentials
    return None if credentials is None else str(credentials.access_key)


def _record_registry(transport: Transport, method: str, url: str, body: Any) -> None:
    access_key = _token_access_key(transport)
    where = ecr_registry_of(transport.registry) if access_key else None
    if where is None:
        return  # a registry that is not ECR (nor stands for it): no IAM
    parts = urlsplit(url)
    shared = json.loads(os.environ.get(SHARED_REGISTRIES_ENV) or "{}").get(transport.registry)
    _write(
        {
            "kind": "registry",
            "account": where[0],
            "shared_by": shared,  # the accounts whose registry this one stands for too (workflow/local)
            "region": where[1],
            "method": method,
            "path": parts.path,
            "body": bool(body) if isinstance(body, bytes | tuple | list) else body is not None,
            "access_key": access_key,
            "component": component_of(sys._getframe(1)),
            "pid": os.getpid(),
        }
    )


def _register(session: botocore.session.Session) -> None:
    session.register("before-parameter-build", _keep_params, unique_id="iam-record-params")
    session.register("before-call", _before_call, unique_id="iam-record-call")
    session.register("after-call.sts.AssumeRole", _after_assume_role, unique_id="iam-record-assumed")
    session.register(
        "after-call.secretsmanager.GetSecretValue", _after_get_secret_value, unique_id="iam-record-secret"
    )


def install(path: str) -> None:
    """Record to `path` from now on, in this process (idempotent)."""
    with _lock:
        if _installed:
            _installed["path"] = path
            return
        _installed["path"] = path
        original_init = botocore.session.Session.__init__
        original_thread_init = threading.Thread.__init__
        original_request = Transport.request

        def session_init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            _register(self)

        def thread_init(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
            original_thread_init(self, *args, **kwargs)
            self._iam_component = component_of(sys._getframe(1))  # type: ignore[attr-defined]

        def request(self: Transport, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            _record_registry(
                self, method, url if not url.startswith("/") else self.base + url, kwargs.get("body")
            )
            return original_request(self, method, url, *args, **kwargs)

        botocore.session.Session.__init__ = session_init  # type: ignore[method-assign]
        Transport.request = request  # type: ignore[method-assign]
        threading.Thread.__init__ = thread_init  # type: ignore[method-assign]


def read(path: str) -> list[dict[str, Any]]:
    """The records written to `path` so far."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def read_all(directory: str) -> list[dict[str, Any]]:
    """The records of every process that recorded into `directory` (each pytest process has its own file)."""
    if not directory or not os.path.isdir(directory):
        return []
    return [
        record
        for name in sorted(os.listdir(directory))
        if name.endswith(".jsonl")
        for record in read(os.path.join(directory, name))
    ]
