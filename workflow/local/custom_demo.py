"""`ecr-replicate demo --config FILE`: your own rules through the real workflow, on this machine.

The local runtime starts one registry for the source and one per destination account/Region of the config
(its `endpoints` are the runtime's), then for each `--push REPOSITORY:TAG` (by default one sample per rule,
from its first repository and tag globs) pushes a small two-platform image, sends the ECR push event
through EventBridge with the pattern the CDK app deploys, runs the state machine for what the pattern
delivers, prints each state and the email, and checks every destination with skopeo: the image is where
the summary says it was copied, tagged or already present, and nowhere else. Exits 0 when all of that held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workflow.core.exceptions import InvalidRequest
from workflow.core.grammar import repository_problem, tag_problem
from workflow.local.demo import DemoFailure, StatePrinter, verify_absent, verify_present
from workflow.local.images import Image, build_image
from workflow.local.registries import RuntimeSetupError
from workflow.local.runtime import LocalRuntime
from workflow.models.config import ReplicationConfig, load_config, read_config
from workflow.models.rules import compile_pattern

PLATFORMS = ("linux/amd64", "linux/arm64")
ARRIVED = ("copied", "tagged", "present", "superseded")
Printer = Callable[[str], None]


def parse_push(value: str) -> tuple[str, str]:
    """`REPOSITORY:TAG`, validated against ECR's grammar."""
    repository, separator, tag = value.partition(":")
    problem = (repository_problem(repository) or tag_problem(tag)) if separator else None
    if not separator or problem:
        raise InvalidRequest(f"--push {value!r}: {problem or 'not REPOSITORY:TAG'}")
    return repository, tag


def _sample(pattern: str, fill: str) -> str | None:
    """A name a glob accepts (each `*` replaced by `fill`); None for a regular expression or a semver range."""
    return pattern.replace("*", fill) if compile_pattern(pattern).kind == "glob" else None


def sample_pushes(config: ReplicationConfig) -> list[tuple[str, str]]:
    """One push per rule, from its first repository and include globs; InvalidRequest when a rule has none."""
    pushes: list[tuple[str, str]] = []
    for rule in config.rules:
        repository = _sample(rule.repositories[0], "demo")
        tag = next((t for p in rule.tags.include if (t := _sample(p, "1.0.0")) is not None), None)
        if repository is None or tag is None:
            raise InvalidRequest(
                f"rule {rule.name!r} has no glob to make a sample push from: give --push REPOSITORY:TAG"
            )
        if (repository, tag) not in pushes:
            pushes.append((repository, tag))
    return pushes


def runtime_config(path: str) -> dict[str, Any]:
    """The config file as the runtime takes it: validated, its `endpoints` left to the runtime."""
    load_config(path)  # every problem at once, before anything starts
    data = dict(read_config(path))
    data.pop("endpoints", None)
    return data


class CustomDemo:
    """The pushes of one run on a running LocalRuntime."""

    def __init__(self, runtime: LocalRuntime, out: Printer) -> None:
        self.runtime = runtime
        self.out = out

    def run(self, pushes: list[tuple[str, str]]) -> None:
        images = {}
        for repository, tag in pushes:
            images[(repository, tag)] = image = build_image(f"demo {repository}:{tag}", PLATFORMS)
            self.runtime.push(repository, tag, image)  # the source's local ECR sends its push event
        delivered = {
            (event["detail"]["repository-name"], event["detail"]["image-tag"]): arn
            for event, arn in self.runtime.deliver_events()
        }
        for (repository, tag), image in images.items():
            arn = delivered.get((repository, tag))
            self.out(f"\n{repository}:{tag}")
            if arn is None:
                self.out("  the event pattern does not match: no execution")
                self.check(repository, tag, image, {})
                continue
            execution = self.runtime.wait(arn, on_event=StatePrinter(self.out))
            summary = (execution.output or {}) if execution.status == "SUCCEEDED" else {}
            summarized = execution.state_outputs("Summarize")
            if summarized:
                summary = summarized[-1]["summary"]
            for email in self.runtime.notifications():
                self.out(f"  email: {email['subject']}")
                for line in email["message"].rstrip().splitlines():
                    self.out(f"  | {line}")
            actions = {
                f"{line['account']}/{line['region']}": (line["action"], line["repository"])
                for line in summary.get("lines", [])
            }
            self.out(f"  execution {execution.status}, outcome {summary.get('outcome', '-')}")
            self.check(repository, tag, image, actions)

    def check(self, repository: str, tag: str, image: Image, actions: dict[str, tuple[str, str]]) -> None:
        """skopeo: the image is at the destinations whose line says it arrived, and at no other."""
        for place in self.runtime.places[1:]:
            where = f"{place.account}/{place.region}"
            host = self.runtime.registries[place.name].host
            action, destination = actions.get(where, (None, repository))
            if action in ARRIVED:
                verify_present(host, destination, tag, image)
                self.out(f"  ok  {where} {destination}:{tag}: {action}, same digest and platforms (skopeo)")
            elif action is None:
                verify_absent(host, destination, tag)
                self.out(f"  ok  {where}: not a destination of {repository}:{tag}, not there (skopeo)")
            else:
                self.out(f"  --  {where} {destination}:{tag}: {action}")


def run_custom_demo(config_path: str, pushes: list[str], out: Printer = print) -> int:
    """Run the demo on the config at `config_path`; 0 when every check held, 1 otherwise (bad input raises)."""
    started = time.monotonic()
    config = runtime_config(config_path)
    wanted = [parse_push(p) for p in pushes] or sample_pushes(load_config(config_path))
    try:
        with LocalRuntime(config) as runtime:
            out(f"Started {len(runtime.places)} registries, moto and the state machine for {config_path}")
            CustomDemo(runtime, out).run(wanted)
    except (DemoFailure, RuntimeSetupError) as failure:
        out(f"\nDEMO FAILED: {failure}")
        return 1
    out(
        f"\nDEMO PASSED in {time.monotonic() - started:.1f}s: {len(wanted)} push(es) went where the rules say"
    )
    return 0
