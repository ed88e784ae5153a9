"""What the stacks deploy, created in moto for the local runtime: the fan-out bucket, the functions and relays,
the notification topic, the real statemachine.asl.json with its `${...}` substitutions filled, and the rule with
`workflow.pipeline.plan.event_pattern(config)` whose matches land in a queue (moto delivers them to SQS, not to
Step Functions)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from workflow.engine.seeds import RELAY_TIMEOUT_SECONDS
from workflow.local.distributed import parseable
from workflow.local.moto_server import FANOUT_BUCKET
from workflow.local.registries import RuntimeSetupError
from workflow.models.config import parse_config
from workflow.pipeline.plan import event_pattern, pattern_text
from workflow.pipeline.seeds import RELAY_FUNCTION_NAME, relay_regions

# Package data, so an installed wheel runs them: workflow/_data links to the top-level statemachine.asl.json
# and infra/buildspec.yml, and the wheel build copies what they link to.
DATA = resources.files("workflow") / "_data"
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
STATES_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}

Client = Callable[..., Any]


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


class Deployment:
    """The deployed-equivalent AWS resources in moto, made with `client(service, region=None)`, and the names
    of those the runtime works with."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.state_machine_arn = ""
        self.topic_arn = ""
        self.events_queue = ""
        self.notifications_queue = ""

    def create(
        self, config: Mapping[str, Any], state_machine: Path, function_timeouts: Mapping[str, int]
    ) -> None:
        """Create every resource, for the config mapping `config`, in the order the runtime relies on."""
        self._client("s3").create_bucket(Bucket=FANOUT_BUCKET)
        role_arn = self._client("iam").create_role(
            RoleName="ecr-replication-state-machine", AssumeRolePolicyDocument=json.dumps(STATES_TRUST)
        )["Role"]["Arn"]
        arns = self._create_functions(role_arn, function_timeouts)
        self._create_relays(config, role_arn)
        self._create_notifications()
        substitutions = {**arns, "CopyProjectName": PROJECT_NAME, "NotificationTopicArn": self.topic_arn}
        definition = _substitute(state_machine.read_text(encoding="utf-8"), substitutions)
        json.loads(definition)
        definition = parseable(definition)
        self.state_machine_arn = self._client("stepfunctions").create_state_machine(
            name="ecr-replication", definition=definition, roleArn=role_arn, type="STANDARD"
        )["stateMachineArn"]
        self._create_rule(config)

    def _create_functions(self, role_arn: str, timeouts: Mapping[str, int]) -> dict[str, str]:
        """The state machine's functions, each with its deployed timeout; their ARNs by substitution name."""
        lambda_client = self._client("lambda")
        arns = {}
        for state, module in FUNCTIONS.items():
            arns[f"{state}FunctionArn"] = lambda_client.create_function(
                FunctionName=f"ecr-replication-{module}",
                Runtime="python3.12",
                Role=role_arn,
                Handler=f"lambdas.{module}.handler",
                Code={"ZipFile": _placeholder_zip()},
                Timeout=timeouts[module],
            )["FunctionArn"]
        return arns

    def _create_relays(self, config: Mapping[str, Any], role_arn: str) -> None:
        """The relay function in each seeded Region (regional_seeds), as the relay stacks deploy it."""
        for region in relay_regions(parse_config(config)):
            self._client("lambda", region).create_function(
                FunctionName=RELAY_FUNCTION_NAME,
                Runtime="python3.12",
                Role=role_arn,
                Handler="lambdas.relay.handler",
                Code={"ZipFile": _placeholder_zip()},
                # The relay stack's timeout: the local bridge ends a function at its Timeout as Lambda does
                # (Sandbox.Timedout), and moto's default is 3 s.
                Timeout=RELAY_TIMEOUT_SECONDS,
            )

    def _create_notifications(self) -> None:
        """The notification topic, with a queue subscribed that keeps what it publishes."""
        sns = self._client("sns")
        self.topic_arn = sns.create_topic(Name="ecr-replication-notifications")["TopicArn"]
        self.notifications_queue = self._client("sqs").create_queue(QueueName="notifications")["QueueUrl"]
        sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=self._queue_arn(self.notifications_queue)
        )

    def _create_rule(self, config: Mapping[str, Any]) -> None:
        """The rule with the compiled pattern, its matches sent to a queue."""
        self.events_queue = self._client("sqs").create_queue(QueueName="matched-ecr-pushes")["QueueUrl"]
        events = self._client("events")
        events.put_rule(Name="ecr-push", EventPattern=pattern_text(event_pattern(parse_config(config))))
        events.put_targets(
            Rule="ecr-push", Targets=[{"Id": "start-replication", "Arn": self._queue_arn(self.events_queue)}]
        )

    def break_relay(self, region: str) -> None:
        """Remove the relay function of `region` (a relay not deployed, or gone): copies there fall back."""
        self._client("lambda", region).delete_function(FunctionName=RELAY_FUNCTION_NAME)

    def _queue_arn(self, url: str) -> str:
        attributes = self._client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])
