"""The compiled EventBridge pattern in the local runtime, whose PutRule refuses what EventBridge refuses:
globs EventBridge cannot take as written still deploy, and the pushes they accept start an execution."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import E2E, EU, SOURCE, destination
from workflow.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.own_runtime]


@pytest.fixture
def runtime() -> Iterator[Callable[[list[dict[str, Any]]], E2E]]:
    """Start a runtime (source and eu-west-1) with the given rules on `app`."""
    started: list[LocalRuntime] = []

    def start(rules: list[dict[str, Any]]) -> E2E:
        named = [
            {"name": f"r{i}", "repositories": ["app"], "destinations": [destination(EU)], **rule}
            for i, rule in enumerate(rules)
        ]
        local = LocalRuntime({"source": SOURCE, "rules": named})
        started.append(local)
        return E2E(local.__enter__())

    yield start
    for local in started:
        local.__exit__(None, None, None)


def test_a_double_star_glob_deploys_and_its_push_replicates(runtime: Callable[..., E2E]) -> None:
    # Given a rule with `hotfix-**` (EventBridge refuses consecutive wildcards in a wildcard filter)
    e2e = runtime([{"tags": {"include": ["hotfix-**", "*-**-final"]}}])
    # When a matching tag is pushed and its event goes through the deployed rule
    tag = e2e.new_tag("hotfix")
    [execution] = e2e.run_event(tag, e2e.push(tag))
    # Then it replicates; a push no glob accepts starts nothing
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["outcome"] == "SUCCEEDED"
    other = e2e.new_tag("dev")
    assert e2e.run_event(other, e2e.push(other)) == []


def test_a_case_insensitive_exclude_stops_an_upper_case_release_candidate(
    runtime: Callable[..., E2E],
) -> None:
    # Given release-* excluding *-rc*, case ignored (the pattern: a prefix ignoring case)
    e2e = runtime([{"tags": {"include": ["release-*"], "exclude": ["*-rc*"], "case_insensitive": True}}])
    # When RELEASE-1.0.0-RC1 is pushed
    candidate = "RELEASE-1.0.0-RC1"
    [execution] = e2e.run_event(candidate, e2e.push(candidate))
    # Then EventBridge lets it through (the exclude is the Plan's) and the Plan skips it, copying nothing
    assert execution.output["outcome"] == "SKIPPED"
    assert execution.output["skipped_reason"].endswith(f"tag {candidate!r} is excluded by '*-rc*'")
    assert e2e.digest_at(EU, candidate) is None
    # And Release-1.0.0 replicates
    release = "Release-1.0.0"
    image = e2e.push(release)
    [copied] = e2e.run_event(release, image)
    assert copied.output["outcome"] == "SUCCEEDED"
    assert e2e.digest_at(EU, release) == image.digest


def test_the_local_runtime_refuses_a_pattern_eventbridge_would_refuse(
    runtime: Callable[..., E2E], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a compiler that emits a wildcard EventBridge refuses
    monkeypatch.setattr(
        "workflow.local.deployment.event_pattern",
        lambda config: {"source": ["aws.ecr"], "detail": {"image-tag": [{"wildcard": "release-**"}]}},
    )
    # When the local runtime deploys its rule / Then it stops there, as a deploy would
    with pytest.raises(ClientError) as refused:
        runtime([{"tags": {"include": ["release-*"]}}])
    assert refused.value.response["Error"]["Code"] == "InvalidEventPatternException"
    assert "Consecutive wildcard characters at pos 9" in str(refused.value)
