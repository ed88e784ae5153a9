"""Sync's execution starts: names derived from the work and the day, RUNNING executions topped up.

An execution is named `sync-<repository>-<hash of the work>-<YYYYMMDD>` (attempt 2 and later carry
`-<attempt>`), so a re-run never starts work that is still running, and work whose executions ended is
retried up to `MAX_ATTEMPTS` a day. Without `wait`, at most `max_in_flight` executions are RUNNING.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from botocore.exceptions import ClientError

from workflow.core.exceptions import InvalidRequest
from workflow.ops.inventory import PAGE_SIZE, AwsClients
from workflow.ops.sync.actions import Action
from workflow.ops.sync.options import SyncOptions

EXECUTION_NAME_MAX = 80
EXECUTION_PREFIX = "sync-"
HASH_LENGTH = 16
MAX_ATTEMPTS = 3
DAY_FORMAT = "%Y%m%d"
# What follows the stem: "-<day>" and, from attempt 2, "-<attempt>".
NAME_TAIL = re.compile(r"-\d{8}(?:-\d+)?$")
NAME_TAIL_MAX = len("-YYYYMMDD") + len(f"-{MAX_ATTEMPTS}")
ENDED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def execution_name(
    repository: str,
    digest: str,
    tag: str,
    destinations: Iterable[str],
    attempt: int = 1,
    *,
    day: date,
    delete: bool = False,
    source: str | None = None,
) -> str:
    """A Step Functions execution name (<= 80 of [A-Za-z0-9-_]) derived from the work it does and the day.

    `sync-<repository>-<hash of the work>-<YYYYMMDD>`: `destinations` are `account/region` strings (order
    does not matter); attempt 2 and later carry a `-<attempt>` suffix, used only when an earlier attempt
    of the day ended and the image is still missing. A delete's (`delete`) work differs from a replication's.
    `source` (`account/region`, in a config with several sources) is part of the work: a repository of the same
    name in two sources is two images.
    """
    key = "|".join(
        [
            repository,
            digest,
            tag,
            ",".join(sorted(destinations)),
            *(["delete"] if delete else []),
            *([source] if source else []),
        ]
    )
    digest_hex = hashlib.sha256(key.encode()).hexdigest()[:HASH_LENGTH]
    room = EXECUTION_NAME_MAX - len(EXECUTION_PREFIX) - 1 - HASH_LENGTH - NAME_TAIL_MAX
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", repository).strip("-")[:room].rstrip("-_") or "image"
    suffix = f"-{attempt}" if attempt > 1 else ""
    return f"{EXECUTION_PREFIX}{slug}-{digest_hex}-{day.strftime(DAY_FORMAT)}{suffix}"


def execution_stem(name: str) -> str:
    """The part of an execution name that names the work, whatever the day and attempt."""
    return NAME_TAIL.sub("", name)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of execution `name` of a state machine."""
    prefix, separator, machine = state_machine_arn.partition(":stateMachine:")
    if not separator:
        raise InvalidRequest(f"{state_machine_arn!r} is not a state machine ARN")
    return f"{prefix}:execution:{machine.split(':')[0]}:{name}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def region_of_arn(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "stateMachine":
        raise InvalidRequest(
            f"{arn!r} is not a state machine ARN (arn:<partition>:states:<region>:<account>:stateMachine:<name>)"
        )
    return parts[3]


class ExecutionStarter:
    """Starts (and, with `wait`, waits for) one sync's executions; thread-safe."""

    def __init__(
        self,
        options: SyncOptions,
        clients: AwsClients,
        day: date,
        *,
        log: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.clients = clients
        self.day = day
        self.log = log
        self.sleep = sleep
        self._running: dict[str, str] = {}
        # Executions this run may still start (None: no limit beyond the pool's).
        self._slots: int | None = None
        self._slots_lock = threading.Lock()

    def prepare(self, starts: list[Action]) -> None:
        """Read the RUNNING executions once (a refusal fails every start) and, without `wait`, the slots left."""
        if not starts:
            return
        try:
            running = self._running_executions()
        except ClientError as refused:
            for action in starts:
                action.status, action.error = "failed", f"ClientError: {refused}"
                self.log(f"failed: {action.describe()}")
            return
        self._running = {execution_stem(name): name for name in running}
        if not self.options.wait:
            self._slots = max(0, self.options.max_in_flight - len(running))
            self.log(f"{len(running)} executions running; starting at most {self._slots}")

    def _running_executions(self) -> list[str]:
        """The names of the state machine's RUNNING executions."""
        arn = self.options.state_machine_arn
        assert arn is not None
        paginator = self.clients.client("stepfunctions", region_of_arn(arn)).get_paginator("list_executions")
        pages = paginator.paginate(
            stateMachineArn=arn, statusFilter="RUNNING", PaginationConfig={"PageSize": PAGE_SIZE}
        )
        return [execution["name"] for page in pages for execution in page["executions"]]

    def _take_slot(self) -> bool:
        """Claim one execution start; False when this run may start no more."""
        with self._slots_lock:
            if self._slots is None:
                return True
            if self._slots == 0:
                return False
            self._slots -= 1
            return True

    def start(self, action: Action) -> None:
        """Start the action's execution under its name of the day, unless running or ended (then the next attempt)."""
        running = self._running.get(execution_stem(action.name))
        if running is not None:
            # Started by an earlier run (maybe an earlier day) and not ended yet.
            action.name, action.status = running, "already-started"
            return
        if self._slots == 0:
            action.status = "deferred"
            return
        arn = self.options.state_machine_arn
        assert arn is not None
        client = self.clients.client("stepfunctions", region_of_arn(arn))
        delete = action.kind == "delete"
        request: dict[str, Any] = {
            "repository": action.repository,
            "tag": action.tag,
            "destinations": [{"account": t.account, "region": t.region} for t in action.targets],
        }
        if delete:  # a stale tag, removed by the workflow under its delete checks (README, manual runs)
            request.update(action="delete", digest=action.digest)
        if action.source:
            account, _, region = action.source.partition("/")
            request["source"] = {"account": account, "region": region}
        payload = json.dumps(request)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            name = execution_name(
                action.repository,
                action.digest,
                action.tag,
                action.destinations,
                attempt,
                day=self.day,
                delete=delete,
                source=action.source,
            )
            status = self._status(client, execution_arn(arn, name))
            if status is None:
                if not self._take_slot():
                    action.status = "deferred"
                    return
                try:
                    started = client.start_execution(stateMachineArn=arn, name=name, input=payload)
                except ClientError as error:
                    if _code(error) != "ExecutionAlreadyExists":
                        raise
                    status = self._status(client, execution_arn(arn, name))
                else:
                    action.name, action.error = name, None
                    if self.options.wait:
                        self._wait(client, started["executionArn"], action)
                    else:
                        action.status = "done"
                    return
            if status not in ENDED:
                action.name, action.status = name, "already-started"
                return
            action.error = f"execution {name} ended {status}"
        action.status = "failed"
        action.error = (
            f"{MAX_ATTEMPTS} executions ended on {self.day} without the image arriving "
            f"(last: {action.error}); a later day's run tries again"
        )

    @staticmethod
    def _status(client: Any, arn: str) -> str | None:
        """The status of an execution, or None when there is none under that name."""
        try:
            return str(client.describe_execution(executionArn=arn)["status"])
        except ClientError as error:
            if _code(error) in ("ExecutionDoesNotExist", "StateMachineDoesNotExist"):
                return None
            raise

    def _wait(self, client: Any, arn: str, action: Action) -> None:
        delay = self.options.poll_initial
        while True:
            self.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - jitter, not security
            status = client.describe_execution(executionArn=arn)["status"]
            if status in ENDED:
                break
            delay = min(delay * 2, self.options.poll_max)
        if status == "SUCCEEDED":
            action.status = "done"
        else:
            action.status, action.error = "failed", f"execution {action.name} ended {status}"
