"""The local runtime: the whole product on one machine, with no AWS account.

- registries: one CNCF distribution registry per account/Region pair (registries.py), on loopback, each
  behind a local ECR front (ecr_front.py) that every client reaches it through: the front of each source
  account and Region emits ECR's PUSH and DELETE events for every tag put or removed there, on that account's
  bus in that Region, whoever writes (a test, the Precheck, the copy job), deletes tags alone, and refuses to
  move an immutable tag;
- AWS: moto in server mode (`ThreadedMotoServer`, in this process, on a free loopback port). Every
  client in this process, the handlers and the copy subprocess reach it through `AWS_ENDPOINT_URL`;
  `MOTO_ACCOUNT_ID` makes moto answer as the source account, as the deployed source stack would;
- the real statemachine.asl.json with its `${...}` substitutions filled, on moto's interpreter, with
  the real handlers and the buildspec's copy command (bridges.py); each function has its deployed timeout
  (`function_timeouts` shortens some for a test), and an invocation that overruns it ends in Sandbox.Timedout;
- EventBridge as moto emulates it: a rule with `workflow.pipeline.plan.event_pattern(config)` and an SQS target.
  moto delivers matches to SQS, not to Step Functions, so `deliver_events` turns each delivered event
  into a StartExecution, and only those (`run_events` keeps doing so, generation after generation, until
  no event is left: the product's own writes in a source account and Region are events too). Its PutRule
  refuses what AWS refuses (eventbridge.py: size, wildcard grammar, wildcard complexity), so a pattern AWS
  would not deploy fails here too. Each other source has the forwarding rule its stack deploys (its pattern,
  the home bus as target, a dead-letter queue) and the home bus the policy the source stack gives it;
  forwarding.py delivers between buses as EventBridge does (the event keeps its account and Region; another
  account's event passes only what the home bus policy allows, else it goes to the dead-letter queue);
- scan results: `runtime.scans` (scans.py) answers ECR's DescribeImageScanFindings, as ECR does: platform
  images only, and "not found" for the first `scan_not_found_seconds` after a push;
- ECR managed signing: `runtime.signing` (managed_signing.py) answers DescribeImageSigningStatus, which moto
  lacks;
- each registry stands for its account/Region's ECR registry (`ECR_REPLICATE_ECR_ENDPOINTS`): a client gets its
  registry token from moto's GetAuthorizationToken through the session it is given, as on ECR;
- the fan-out bucket (FANOUT_BUCKET) in moto's S3, where a run past the inline Map's limit keeps its targets,
  results and events; the Distributed Map writes its results there and honours its failure threshold as AWS
  does (distributed.py).

Several accounts/Regions may share one registry (`Place.registry`: the name of the place whose registry it
uses), so a run with a thousand destinations needs a handful of registry processes; give each destination its
own repository (a destination `repository` template) so that each is a copy of its own.

`LocalRuntime` is a context manager: everything it starts is stopped and its temporary directory
removed on exit, including on an exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import yaml
from moto.core.config import default_user_config
from moto.events.models import events_backends
from moto.moto_api import _internal as moto_api
from moto.server import ThreadedMotoServer

from workflow.engine.ecr import TagMutability
from workflow.local.bridges import Buildspec, CodeBuildSettings, bridges
from workflow.local.distributed import distributed_map, parseable
from workflow.local.ecr_front import EcrFront, ecr_event_detail
from workflow.local.eventbridge import strict_rules
from workflow.local.forwarding import Forwarding, forwarding
from workflow.local.images import Image, push_image
from workflow.local.managed_signing import SigningStatuses
from workflow.local.managed_signing import applied as signing_applied
from workflow.local.registries import (
    LocalRegistry,
    RegistryProcess,
    RuntimeSetupError,
    free_port,
    running_registry,
)
from workflow.local.scans import ScanResults, applied
from workflow.models.config import ReplicationConfig, parse_config
from workflow.pipeline.plan import event_pattern, pattern_text
from workflow.pipeline.seeds import RELAY_FUNCTION_NAME, relay_regions
from workflow.pipeline.timeouts import FUNCTION_TIMEOUTS
from workflow.registry.auth import ECR_ENDPOINTS_ENV

# Package data, so an installed wheel runs them: workflow/_data links to the top-level statemachine.asl.json
# and infra/buildspec.yml, and the wheel build copies what they link to.
DATA = resources.files("workflow") / "_data"
DEMO_CONFIG = Path(str(resources.files("workflow.local") / "demo-config.yaml"))
STATE_MACHINE = Path(str(DATA / "statemachine.asl.json"))
BUILDSPEC = Path(str(DATA / "buildspec.yml"))
PROJECT_NAME = "ecr-replication-copy"
FUNCTIONS = {
    "Plan": "plan",
    "Gate": "gate",
    "Precheck": "precheck",
    "Record": "record",
    "Summarize": "summarize",
}
# The Gate function's look-again interval (30 s deployed): a scan completing between looks takes a second here.
GATE_POLL_SECONDS = "1"
# How long a pushed image's scan is "not found" (ScanNotFoundException) before its scripted result shows.
SCAN_NOT_FOUND_SECONDS = 2.0
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
MAX_TAG_IN_NAME = 71  # execution names are at most 80 characters ("Step Functions service quotas")
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
FANOUT_BUCKET = "ecr-replication-fanout-local"


@dataclass(frozen=True)
class Place:
    """An account/Region pair with its registry: its own, or with `registry` the one of the place so named;
    `source` when it is one of the config's sources (its front emits ECR's events there)."""

    name: str
    account: str
    region: str
    readonly: bool = False
    registry: str | None = None
    source: bool = False


@dataclass
class Execution:
    """A finished (or timed-out) execution: status, parsed output, error/cause, history events."""

    arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def states_entered(self) -> list[str]:
        """Names of the states entered, in order (Map iterations interleave)."""
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.events if e["type"].endswith("StateEntered")
        ]

    def state_outputs(self, name: str) -> list[Any]:
        """The parsed output of every exit from the state `name`, in order."""
        return [
            json.loads(e["stateExitedEventDetails"]["output"])
            for e in self.events
            if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == name
        ]

    def errors(self) -> list[str]:
        """The error names of every failed task, in order (retried attempts included)."""
        return [
            details["error"]
            for e in self.events
            for key in ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails")
            if (details := e.get(key))
        ]


def places_for(config: Mapping[str, Any]) -> list[Place]:
    """One place per account/Region in a config mapping: "source" (the home source), one per other source
    ("source-<account>-<region>"), then one per destination Region."""
    sources = config.get("sources") or [config["source"]]
    home = next((s for s in sources if s.get("home")), sources[0])
    places = [Place("source", home["account"], home["region"], source=True)]
    for other in sources:
        if (other["account"], other["region"]) != (home["account"], home["region"]):
            name = f"source-{other['account']}-{other['region']}"
            places.append(Place(name, other["account"], other["region"], source=True))
    for rule in config["rules"]:
        for destination in rule["destinations"]:
            for region in destination["regions"]:
                if all((p.account, p.region) != (destination["account"], region) for p in places):
                    places.append(Place(f"{destination['account']}-{region}", destination["account"], region))
    return places


def _substitute(template: str, values: Mapping[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    unknown = sorted(set(re.findall(r"\$\{([A-Za-z0-9]+)\}", template)))
    if unknown:
        raise RuntimeSetupError(
            f"{STATE_MACHINE.name} has substitutions the local runtime does not know: {unknown}"
        )
    return template


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "README.txt", "The local runtime runs the handler in-process (workflow/local/bridges.py).\n"
        )
    return buffer.getvalue()


class LocalRuntime:
    """Registries + moto + the deployed-equivalent AWS resources. Use as a context manager."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        places: list[Place] | None = None,
        state_machine: Path = STATE_MACHINE,
        buildspec: Path = BUILDSPEC,
        function_timeouts: Mapping[str, int] | None = None,
        scan_not_found_seconds: float = SCAN_NOT_FOUND_SECONDS,
    ) -> None:
        self.config_data = dict(config) if config is not None else yaml.safe_load(DEMO_CONFIG.read_text())
        self.places = places or places_for(self.config_data)
        self.state_machine_file = state_machine
        self.buildspec_file = buildspec
        # The deployed timeouts (seconds), by handler module; a test may shorten some.
        self.function_timeouts = {**FUNCTION_TIMEOUTS, **(function_timeouts or {})}
        self.registries: dict[str, LocalRegistry] = {}
        self._processes: dict[str, RegistryProcess] = {}
        self.fronts: dict[str, EcrFront] = {}
        self._emit_lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self.workdir = Path()
        self.lambda_log = Path()
        self.config_file = Path()
        self.endpoint_url = ""
        self.codebuild: CodeBuildSettings
        self.state_machine_arn = ""
        self.topic_arn = ""
        self._events_queue = ""
        self._notifications_queue = ""
        self.scans = ScanResults(not_found_seconds=scan_not_found_seconds)
        self.signing = SigningStatuses()
        self.config: ReplicationConfig
        self.forwarding: Forwarding

    def __enter__(self) -> LocalRuntime:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # set-up -------------------------------------------------------------------------------------

    def _start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="ecr-replicate-local-"))
        self._stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        self.lambda_log = self.workdir / "lambda.log"
        for place in self.places:
            if place.registry is not None:
                continue
            process = self._stack.enter_context(
                running_registry(place.name, self.workdir, readonly=place.readonly)
            )
            self._processes[place.name] = process
            front = EcrFront(process.registry, emit=self._emitter(place) if place.source else None)
            self._stack.callback(front.stop)
            self.fronts[place.name] = front
            self.registries[place.name] = front.registry
        for place in self.places:
            if place.registry is not None:
                self.registries[place.name] = self.registries[place.registry]
        config = {**self.config_data, "endpoints": self._endpoints()}
        self.config = parse_config(config)
        config_file = self.config_file = self.workdir / "replication.json"
        config_file.write_text(json.dumps(config, indent=2))
        port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        home = self.config.source
        self._stack.enter_context(
            mock.patch.dict(
                os.environ, self._environment(port, home.account, config_file, config["endpoints"])
            )
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(name, None)
        self._stack.enter_context(mock.patch.dict(default_user_config, MOTO_CONFIG))
        self._start_moto(port)
        self.codebuild = CodeBuildSettings(
            project_name=PROJECT_NAME,
            buildspec=Buildspec.load(self.buildspec_file),
            environment=self._build_environment(),
            region=home.region,
            account=home.account,
        )
        self._stack.enter_context(bridges(self.codebuild, self.lambda_log))
        self._stack.enter_context(distributed_map())
        self._stack.enter_context(applied(self.scans))
        self._stack.enter_context(strict_rules())
        self._stack.enter_context(forwarding())
        self._stack.enter_context(signing_applied(self.signing))
        self._create_resources(config)
        self.forwarding = Forwarding(self.config, self.client("events"))
        self.forwarding.deploy()

    def _endpoints(self) -> list[dict[str, Any]]:
        return [
            {
                "account": p.account,
                "region": p.region,
                "registry": self.registries[p.name].host,
                "insecure": True,
            }
            for p in self.places
        ]

    def _environment(
        self, port: int, account: str, config_file: Path, endpoints: list[dict[str, Any]]
    ) -> dict[str, str]:
        # Each registry stands for its account/Region's ECR registry: clients get their registry token from
        # GetAuthorizationToken (moto) there, as the principal whose session they are given (registry/auth.py).
        stands_for = {e["registry"]: f"{e['account']}/{e['region']}" for e in endpoints}
        environment = {
            ECR_ENDPOINTS_ENV: json.dumps(stands_for),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": self.config.source.region,
            "AWS_REGION": self.config.source.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "MOTO_PORT": str(port),
            "MOTO_ACCOUNT_ID": account,
            "REPLICATION_CONFIG_FILE": str(config_file),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "GATE_POLL_SECONDS": GATE_POLL_SECONDS,
            "FANOUT_BUCKET": FANOUT_BUCKET,
        }
        return environment

    def _build_environment(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "MOTO_"))}
        environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
        return environment

    def _start_moto(self, port: int) -> None:
        # Request logs, and the interpreter's log of every task error (already in the execution history).
        for name, level in (("werkzeug", logging.ERROR), ("moto.stepfunctions.parser", logging.CRITICAL)):
            log = logging.getLogger(name)
            self._stack.callback(log.setLevel, log.level)
            log.setLevel(level)
        moto_api.moto_api_backend.reset()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        self._stack.callback(moto_api.moto_api_backend.reset)
        self._stack.callback(server.stop)

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for moto, as the home account, in the home Region (default) or `region`."""
        return boto3.client(
            service, region_name=region or self.config.source.region, endpoint_url=self.endpoint_url
        )  # type: ignore[call-overload]

    def _create_resources(self, config: Mapping[str, Any]) -> None:
        iam, sqs, sns = self.client("iam"), self.client("sqs"), self.client("sns")
        self.client("s3").create_bucket(Bucket=FANOUT_BUCKET)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "states.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role_arn = iam.create_role(
            RoleName="ecr-replication-state-machine", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        lambda_client = self.client("lambda")
        arns = {}
        for state, module in FUNCTIONS.items():
            arns[f"{state}FunctionArn"] = lambda_client.create_function(
                FunctionName=f"ecr-replication-{module}",
                Runtime="python3.12",
                Role=role_arn,
                Handler=f"lambdas.{module}.handler",
                Code={"ZipFile": _placeholder_zip()},
                Timeout=self.function_timeouts[module],
            )["FunctionArn"]
        self._create_relays(config, role_arn)
        self.topic_arn = sns.create_topic(Name="ecr-replication-notifications")["TopicArn"]
        self._notifications_queue = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=self._queue_arn(self._notifications_queue)
        )
        substitutions = {
            **arns,
            "CopyProjectName": PROJECT_NAME,
            "NotificationTopicArn": self.topic_arn,
        }
        definition = _substitute(self.state_machine_file.read_text(encoding="utf-8"), substitutions)
        json.loads(definition)
        definition = parseable(definition)
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name="ecr-replication", definition=definition, roleArn=role_arn, type="STANDARD"
        )["stateMachineArn"]
        self._events_queue = sqs.create_queue(QueueName="matched-ecr-pushes")["QueueUrl"]
        events = self.client("events")
        events.put_rule(Name="ecr-push", EventPattern=pattern_text(event_pattern(parse_config(config))))
        events.put_targets(
            Rule="ecr-push", Targets=[{"Id": "start-replication", "Arn": self._queue_arn(self._events_queue)}]
        )

    def _create_relays(self, config: Mapping[str, Any], role_arn: str) -> None:
        """The relay function in each seeded Region (regional_seeds), as the relay stacks deploy it."""
        for region in relay_regions(parse_config(config)):
            self.client("lambda", region).create_function(
                FunctionName=RELAY_FUNCTION_NAME,
                Runtime="python3.12",
                Role=role_arn,
                Handler="lambdas.relay.handler",
                Code={"ZipFile": _placeholder_zip()},
            )

    def break_relay(self, region: str) -> None:
        """Remove the relay function of `region` (a relay not deployed, or gone): copies there fall back."""
        self.client("lambda", region).delete_function(FunctionName=RELAY_FUNCTION_NAME)

    def _queue_arn(self, url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    # operations ---------------------------------------------------------------------------------

    def registry(self, name: str) -> LocalRegistry:
        """The registry of a place ("source", or e.g. "222222222222-eu-west-1")."""
        return self.registries[name]

    def registry_of(self, account: str, region: str) -> LocalRegistry:
        """The registry standing for an account/Region pair."""
        for place in self.places:
            if (place.account, place.region) == (account, region):
                return self.registries[place.name]
        raise KeyError(f"no registry for {account}/{region}")

    def refuse_pushes(self, account: str, region: str, refuse: bool) -> None:
        """Restart the registry of an account/Region read-only (it refuses pushes) or accepting them again."""
        for place in self.places:
            if (place.account, place.region) == (account, region):
                self._processes[place.name].restart(readonly=refuse)
                return
        raise KeyError(f"no registry for {account}/{region}")

    def place_of(self, source: str) -> Place:
        """The place of a source, by place name ("source") or `account/region`."""
        for place in self.places:
            if place.source and source in (place.name, f"{place.account}/{place.region}"):
                return place
        raise KeyError(f"no source {source}")

    def push(self, repository: str, tag: str, image: Image, source: str = "source") -> str:
        """Push an image to a source's registry (the home one by default; its scan starts: see `scans`); returns
        its digest."""
        digest = push_image(self.registries[self.place_of(source).name].url, repository, tag, image)
        self.scans.pushed(repository, image)
        return digest

    def untag(self, repository: str, tag: str, registry: str = "source") -> bool:
        """Remove a tag (only the tag) from a local registry, as `BatchDeleteImage` by tag does in ECR (the
        source's front emits the DELETE event)."""
        return self.fronts[registry].delete_tag(repository, tag)

    def set_tag_mutability(
        self, account: str, region: str, repository: str, mode: str, exclusions: tuple[str, ...] = ()
    ) -> None:
        """Set a repository's tag mutability in the local ECR of an account/Region (PutImageTagMutability)."""
        for place in self.places:
            if (place.account, place.region) == (account, region):
                self.fronts[place.name].set_tag_mutability(repository, TagMutability(mode, exclusions))
                return
        raise KeyError(f"no registry for {account}/{region}")

    def _emitter(self, place: Place) -> Callable[[dict[str, str]], None]:
        """What a source's ECR does for each tag put or removed: its event on that account's default bus in that
        Region (the fronts serve requests in threads, and boto3 makes clients one at a time)."""

        def emit(detail: dict[str, str]) -> None:
            with self._emit_lock:
                self.put_push_event(
                    detail["repository-name"],
                    detail["image-tag"],
                    detail["image-digest"],
                    detail["action-type"],
                    source=place.name,
                )

        return emit

    def put_push_event(
        self, repository: str, tag: str, digest: str, action: str = "PUSH", source: str = "source"
    ) -> None:
        """Send the "ECR Image Action" event ECR emits for a successful push (or, with DELETE, a deleted
        tag), through EventBridge, on the default bus of the source's account and Region (the home one by default).
        A source's front sends one for every tag written; a test calls it to send one again (a late or duplicate
        delivery)."""
        place = self.place_of(source)
        detail = ecr_event_detail(action, repository, tag, digest)
        # ECR puts it on the account's bus itself (no principal's PutEvents): moto's backend of that account
        # and Region, so the event carries them as its `account` and `region`.
        entries = events_backends[place.account][place.region].put_events(
            [{"Source": "aws.ecr", "DetailType": "ECR Image Action", "Detail": json.dumps(detail)}]
        )
        if any("ErrorCode" in entry for entry in entries):
            raise RuntimeSetupError(f"PutEvents failed: {entries}")

    def deliver_events(self) -> list[tuple[dict[str, Any], str]]:
        """Start one execution per event the rule delivered; returns (event, execution ARN) pairs."""
        sqs, sfn = self.client("sqs"), self.client("stepfunctions")
        started = []
        while messages := sqs.receive_message(QueueUrl=self._events_queue, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in messages:
                event = json.loads(message["Body"])
                # At most 80 characters, as Step Functions allows (a cosign tag alone has 68).
                tag = str(event["detail"].get("image-tag", "push"))[:MAX_TAG_IN_NAME]
                name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{tag}-{event['id'][:8]}")
                arn = sfn.start_execution(
                    stateMachineArn=self.state_machine_arn, name=name, input=message["Body"]
                )["executionArn"]
                started.append((event, arn))
                sqs.delete_message(QueueUrl=self._events_queue, ReceiptHandle=message["ReceiptHandle"])
        return started

    def run_events(self, generations: int = 5) -> list[Execution]:
        """Start an execution for each delivered event and wait for them, then again for the events their
        own writes emitted, up to `generations` rounds; returns every execution, in order."""
        finished: list[Execution] = []
        for _ in range(generations):
            started = self.deliver_events()
            if not started:
                break
            finished.extend(self.wait(arn) for _, arn in started)
        return finished

    def drop_events(self) -> list[dict[str, Any]]:
        """Take every delivered event off the queue without starting anything (pushes made before the rule
        existed, as far as the product is concerned); returns them."""
        sqs, dropped = self.client("sqs"), []
        while messages := sqs.receive_message(QueueUrl=self._events_queue, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in messages:
                dropped.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self._events_queue, ReceiptHandle=message["ReceiptHandle"])
        return dropped

    def start_execution(self, payload: Any, name: str | None = None) -> str:
        """Start an execution by hand (the console's "Start execution"); returns its ARN."""
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name or f"manual-{uuid.uuid4().hex[:12]}",
                input=json.dumps(payload),
            )["executionArn"]
        )

    def wait(
        self, arn: str, on_event: Callable[[dict[str, Any]], None] | None = None, timeout: float = 180.0
    ) -> Execution:
        """Poll the execution's history until it ends, passing each new event to `on_event`."""
        sfn = self.client("stepfunctions")
        seen = 0
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        while True:
            description = sfn.describe_execution(executionArn=arn)
            events = self._history(arn)
            for event in events[seen:]:
                if on_event:
                    on_event(event)
            seen = len(events)
            if description["status"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                return Execution(
                    arn, "TIMED_OUT_WAITING", events=events, error="the local runtime stopped waiting"
                )
            time.sleep(0.2)
        output = description.get("output")
        return Execution(
            arn=arn,
            status=description["status"],
            output=json.loads(output) if output else None,
            error=description.get("error"),
            cause=description.get("cause"),
            events=events,
        )

    def _history(self, arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = sfn.get_execution_history(
                executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def notifications(self) -> list[dict[str, str]]:
        """SNS messages published so far (subject and message), drained from the subscribed queue."""
        sqs = self.client("sqs")
        received = []
        while messages := sqs.receive_message(QueueUrl=self._notifications_queue, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in messages:
                envelope = json.loads(message["Body"])
                received.append({"subject": envelope.get("Subject") or "", "message": envelope["Message"]})
                sqs.delete_message(QueueUrl=self._notifications_queue, ReceiptHandle=message["ReceiptHandle"])
        return received


@contextlib.contextmanager
def local_runtime(config: Mapping[str, Any] | None = None, **options: Any) -> Iterator[LocalRuntime]:
    """`with local_runtime() as runtime:` the demo config (or `config`) running locally."""
    with LocalRuntime(config, **options) as runtime:
        yield runtime
