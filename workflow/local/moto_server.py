"""moto as AWS for the local runtime: its server in this process on a loopback port, the environment that sends
every client there (handlers and the copy subprocess too), and the stand-ins that make it behave as AWS does."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from moto.core.config import default_user_config
from moto.moto_api import _internal as moto_api
from moto.server import ThreadedMotoServer

from workflow.local.bridges import CodeBuildSettings, bridges
from workflow.local.distributed import distributed_map
from workflow.local.eventbridge import strict_rules
from workflow.local.forwarding import forwarding
from workflow.local.managed_signing import SigningStatuses
from workflow.local.managed_signing import applied as signing_applied
from workflow.local.scans import ScanResults, applied
from workflow.registry.auth import ECR_ENDPOINTS_ENV

# The Gate function's look-again interval (30 s deployed): a scan completing between looks takes a second here.
GATE_POLL_SECONDS = "1"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
FANOUT_BUCKET = "ecr-replication-fanout-local"
# Registries several accounts share (a fleet mapped onto a few registries): host -> those accounts. A host stands
# for one account's ECR registry (ECR_REPLICATE_ECR_ENDPOINTS), so the IAM coverage test reads this to attribute a
# request there to the account of the role that made it (tests/iam/calls.py); the product never reads it.
SHARED_REGISTRIES_ENV = "ECR_REPLICATE_LOCAL_SHARED_REGISTRIES"


def aws_environment(
    port: int, account: str, region: str, config_file: Path, endpoints: list[dict[str, Any]]
) -> dict[str, str]:
    """The environment of every AWS client of the runtime: moto on `port` as `account` in `region`."""
    # Each registry stands for its account/Region's ECR registry: clients get their registry token from
    # GetAuthorizationToken (moto) there, as the principal whose session they are given (registry/auth.py).
    stands_for = {e["registry"]: f"{e['account']}/{e['region']}" for e in endpoints}
    accounts: dict[str, set[str]] = {}
    for e in endpoints:
        accounts.setdefault(e["registry"], set()).add(e["account"])
    shared = {host: sorted(names) for host, names in accounts.items() if len(names) > 1}
    return {
        ECR_ENDPOINTS_ENV: json.dumps(stands_for),
        SHARED_REGISTRIES_ENV: json.dumps(shared),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "MOTO_PORT": str(port),
        "MOTO_ACCOUNT_ID": account,
        "REPLICATION_CONFIG_FILE": str(config_file),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "GATE_POLL_SECONDS": GATE_POLL_SECONDS,
        "FANOUT_BUCKET": FANOUT_BUCKET,
    }


def build_environment() -> dict[str, str]:
    """The base environment of a copy build: this one, without Powertools' and moto's own settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "MOTO_"))}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment


@contextlib.contextmanager
def moto_server(port: int, environment: Mapping[str, str]) -> Iterator[None]:
    """moto in server mode on `port`, with `environment` set, while it lasts; then moto reset, all restored."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, environment))
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(name, None)
        stack.enter_context(mock.patch.dict(default_user_config, MOTO_CONFIG))
        # Request logs, and the interpreter's log of every task error (already in the execution history).
        for name, level in (("werkzeug", logging.ERROR), ("moto.stepfunctions.parser", logging.CRITICAL)):
            log = logging.getLogger(name)
            stack.callback(log.setLevel, log.level)
            log.setLevel(level)
        moto_api.moto_api_backend.reset()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        stack.callback(moto_api.moto_api_backend.reset)
        stack.callback(server.stop)
        yield


@contextlib.contextmanager
def stand_ins(
    codebuild: CodeBuildSettings, lambda_log: Path, scans: ScanResults, signing: SigningStatuses
) -> Iterator[None]:
    """What the runtime patches into moto while it lasts: the Lambda and CodeBuild bridges, the Distributed Map,
    scan findings, EventBridge's rule checks and bus-to-bus delivery, managed signing."""
    with (
        bridges(codebuild, lambda_log),
        distributed_map(),
        applied(scans),
        strict_rules(),
        forwarding(),
        signing_applied(signing),
    ):
        yield
