"""The local runtime: the whole product on one machine, with no AWS account.

- registries: one CNCF distribution registry per account/Region pair (registries.py, places.py), on loopback,
  each behind a local ECR front (ecr_front.py) that every client reaches it through: the front of each source
  account and Region emits ECR's PUSH and DELETE events for every tag put or removed there, on that account's
  bus in that Region, whoever writes (a test, the Precheck, the copy job), deletes tags alone, and refuses to
  move an immutable tag;
- AWS: moto in server mode (moto_server.py: `ThreadedMotoServer`, in this process, on a free loopback port).
  Every client in this process, the handlers and the copy subprocess reach it through `AWS_ENDPOINT_URL`;
  `MOTO_ACCOUNT_ID` makes moto answer as the source account, as the deployed source stack would;
- the real statemachine.asl.json with its `${...}` substitutions filled (deployment.py), on moto's interpreter,
  with the real handlers and the buildspec's copy command (bridges.py); each function has its deployed timeout
  (`function_timeouts` shortens some for a test), and an invocation that overruns it ends in Sandbox.Timedout;
- EventBridge as moto emulates it: a rule with `workflow.pipeline.plan.event_pattern(config)` and an SQS target.
  moto delivers matches to SQS, not to Step Functions, so `deliver_events` (executions.py) turns each delivered
  event into a StartExecution, and only those (`run_events` keeps doing so, generation after generation, until
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
removed on exit, including on an exception or Ctrl-C (one `ExitStack` holds every part it starts). It starts the
parts in order and keeps the operations the tests and the demo use, passing them to the part that does them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
import yaml

from workflow.engine.ecr import TagMutability
from workflow.local.bridges import Buildspec, CodeBuildSettings
from workflow.local.deployment import BUILDSPEC, PROJECT_NAME, STATE_MACHINE, Deployment
from workflow.local.executions import Execution, Executions
from workflow.local.forwarding import Forwarding
from workflow.local.images import Image, push_image
from workflow.local.managed_signing import SigningStatuses
from workflow.local.moto_server import aws_environment, build_environment, moto_server, stand_ins
from workflow.local.places import Place, PlaceRegistries, places_for, put_ecr_event
from workflow.local.registries import LocalRegistry, free_port
from workflow.local.scans import ScanResults
from workflow.models.config import ReplicationConfig, parse_config
from workflow.pipeline.timeouts import FUNCTION_TIMEOUTS

DEMO_CONFIG = Path(str(resources.files("workflow.local") / "demo-config.yaml"))
# How long a pushed image's scan is "not found" (ScanNotFoundException) before its scripted result shows.
SCAN_NOT_FOUND_SECONDS = 2.0


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
        self._place_registries = PlaceRegistries(self.places)
        self.registries: dict[str, LocalRegistry] = self._place_registries.registries
        self.fronts = self._place_registries.fronts
        self._stack = contextlib.ExitStack()
        self.workdir = Path()
        self.lambda_log = Path()
        self.config_file = Path()
        self.endpoint_url = ""
        self.codebuild: CodeBuildSettings
        self.deployment = Deployment(self.client)
        self.executions = Executions(self.client, self.deployment)
        self.scans = ScanResults(not_found_seconds=scan_not_found_seconds)
        self.signing = SigningStatuses()
        self.config: ReplicationConfig
        self.forwarding: Forwarding

    @property
    def state_machine_arn(self) -> str:
        """The deployed state machine's ARN."""
        return self.deployment.state_machine_arn

    @property
    def topic_arn(self) -> str:
        """The notification topic's ARN."""
        return self.deployment.topic_arn

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
        self._place_registries.start(self._stack, self.workdir)
        config = {**self.config_data, "endpoints": self._endpoints()}
        self.config = parse_config(config)
        config_file = self.config_file = self.workdir / "replication.json"
        config_file.write_text(json.dumps(config, indent=2))
        port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        home = self.config.source
        environment = aws_environment(port, home.account, home.region, config_file, config["endpoints"])
        self._stack.enter_context(moto_server(port, environment))
        self.codebuild = CodeBuildSettings(
            project_name=PROJECT_NAME,
            buildspec=Buildspec.load(self.buildspec_file),
            environment=build_environment(),
            region=home.region,
            account=home.account,
        )
        self._stack.enter_context(stand_ins(self.codebuild, self.lambda_log, self.scans, self.signing))
        self.deployment.create(config, self.state_machine_file, self.function_timeouts)
        self.forwarding = Forwarding(self.config, self.client("events"))
        self.forwarding.deploy()

    def _endpoints(self) -> list[dict[str, Any]]:
        """The config's `endpoints` (a subclass may put a proxy before a registry here)."""
        return self._place_registries.endpoints()

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for moto, as the home account, in the home Region (default) or `region`."""
        return boto3.client(
            service, region_name=region or self.config.source.region, endpoint_url=self.endpoint_url
        )  # type: ignore[call-overload]

    def break_relay(self, region: str) -> None:
        """Remove the relay function of `region` (a relay not deployed, or gone): copies there fall back."""
        self.deployment.break_relay(region)

    # places -------------------------------------------------------------------------------------

    def registry(self, name: str) -> LocalRegistry:
        """The registry of a place ("source", or e.g. "222222222222-eu-west-1")."""
        return self.registries[name]

    def registry_of(self, account: str, region: str) -> LocalRegistry:
        """The registry standing for an account/Region pair."""
        return self.registries[self._place_registries.at(account, region).name]

    def refuse_pushes(self, account: str, region: str, refuse: bool) -> None:
        """Restart the registry of an account/Region read-only (it refuses pushes) or accepting them again."""
        self._place_registries.refuse_pushes(account, region, refuse)

    def place_of(self, source: str) -> Place:
        """The place of a source, by place name ("source") or `account/region`."""
        return self._place_registries.source(source)

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
        self._place_registries.set_tag_mutability(
            account, region, repository, TagMutability(mode, exclusions)
        )

    def put_push_event(
        self, repository: str, tag: str, digest: str, action: str = "PUSH", source: str = "source"
    ) -> None:
        """Send the "ECR Image Action" event ECR emits for a successful push (or, with DELETE, a deleted
        tag), through EventBridge, on the default bus of the source's account and Region (the home one by default).
        A source's front sends one for every tag written; a test calls it to send one again (a late or duplicate
        delivery)."""
        put_ecr_event(self.place_of(source), action, repository, tag, digest)

    # executions ---------------------------------------------------------------------------------

    def deliver_events(self) -> list[tuple[dict[str, Any], str]]:
        """Start one execution per event the rule delivered; returns (event, execution ARN) pairs."""
        return self.executions.deliver_events()

    def run_events(self, generations: int = 5) -> list[Execution]:
        """Start an execution for each delivered event and wait for them, then again for the events their
        own writes emitted, up to `generations` rounds; returns every execution, in order."""
        return self.executions.run_events(generations)

    def drop_events(self) -> list[dict[str, Any]]:
        """Take every delivered event off the queue without starting anything (pushes made before the rule
        existed, as far as the product is concerned); returns them."""
        return self.executions.drop_events()

    def start_execution(self, payload: Any, name: str | None = None) -> str:
        """Start an execution by hand (the console's "Start execution"); returns its ARN."""
        return self.executions.start_execution(payload, name)

    def wait(
        self, arn: str, on_event: Callable[[dict[str, Any]], None] | None = None, timeout: float = 180.0
    ) -> Execution:
        """Poll the execution's history until it ends, passing each new event to `on_event`."""
        return self.executions.wait(arn, on_event, timeout)

    def notifications(self) -> list[dict[str, str]]:
        """SNS messages published so far (subject and message), drained from the subscribed queue."""
        return self.executions.notifications()


@contextlib.contextmanager
def local_runtime(config: Mapping[str, Any] | None = None, **options: Any) -> Iterator[LocalRuntime]:
    """`with local_runtime() as runtime:` the demo config (or `config`) running locally."""
    with LocalRuntime(config, **options) as runtime:
        yield runtime
