"""The local runtime's PutRule refuses what EventBridge refuses (moto stores any pattern); and the tests'
EventBridge matcher agrees with the user guide's examples."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.unit.eventbridge_matcher import matches
from workflow.local.eventbridge import pattern_refusal, strict_rules, wildcard_complexity, wildcard_problem
from workflow.pipeline.event_filters import WILDCARD_COMPLEXITY_MAX


def tag_pattern(*filters: Any) -> str:
    """An ECR push pattern filtering image-tag."""
    return json.dumps({"source": ["aws.ecr"], "detail": {"image-tag": list(filters)}})


def stack_wildcards(count: int) -> list[str]:
    """vals-ai/Valkyrie#278's wildcard values, `*:stack/NAME/*`, for `count` stacks."""
    return [f"*:stack/{name}Stack/*" for name in ["Network", "Data", "App", "Monitoring"][:count]]


def stacks_pattern(count: int) -> str:
    """A pattern with those wildcards on one field."""
    return json.dumps({"detail": {"stack-id": [{"wildcard": value} for value in stack_wildcards(count)]}})


@pytest.fixture
def events():
    with mock_aws():
        yield boto3.client("events", region_name="us-east-1")


def test_moto_alone_accepts_a_pattern_eventbridge_refuses(events) -> None:
    # Given moto without the stand-in / When a rule with consecutive wildcards is put / Then it is stored
    events.put_rule(Name="loose", EventPattern=tag_pattern({"wildcard": "release-**"}))
    assert events.describe_rule(Name="loose")["EventPattern"]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (tag_pattern({"wildcard": "release-**"}), "Consecutive wildcard characters at pos 9"),
        (tag_pattern({"anything-but": {"wildcard": "a**"}}), "Consecutive wildcard characters at pos 2"),
        (tag_pattern({"wildcard": "a\\b*"}), "Invalid escape character at pos 2"),
        (stacks_pattern(4), "Rule is too complex: wildcard complexity over 9 on detail.stack-id"),
        (tag_pattern(*[f"v{i:04d}" for i in range(300)]), "over the 2,048 quota"),
    ],
)
def test_the_stand_in_refuses_what_eventbridge_refuses(events, pattern: str, reason: str) -> None:
    # Given the local runtime's PutRule / When a pattern EventBridge refuses is put
    with strict_rules(), pytest.raises(ClientError) as refused:
        events.put_rule(Name="strict", EventPattern=pattern)
    # Then it is refused as EventBridge refuses it, naming why, and nothing is stored
    assert refused.value.response["Error"]["Code"] == "InvalidEventPatternException"
    assert reason in refused.value.response["Error"]["Message"]
    assert events.list_rules()["Rules"] == []


@pytest.mark.parametrize(
    "pattern",
    [
        stacks_pattern(3),
        tag_pattern({"wildcard": "release-*-final"}, {"prefix": {"equals-ignore-case": "v"}}, "1.0.0"),
        tag_pattern({"wildcard": "a\\*b\\\\c*"}),
    ],
)
def test_the_stand_in_accepts_what_eventbridge_accepts(events, pattern: str) -> None:
    # Given the local runtime's PutRule / When a pattern EventBridge deploys is put / Then it is stored
    with strict_rules():
        events.put_rule(Name="fine", EventPattern=pattern)
    assert json.loads(events.describe_rule(Name="fine")["EventPattern"]) == json.loads(pattern)


# event-ruler's MachineComplexityEvaluatorTest: (bare values, complexity)
EVENT_RULER_CASES = [
    (["*"], 1),
    (["*", "ab*c"], 3),
    (["abc"], 1),
    (["*aa"], 3),
    (["a*bbb"], 4),
    (["*ab*ad"], 4),
    (["a*b*bb"], 5),
    (["*abc", "*abcde"], 4),
    (["a*aaa", "aa*aa"], 7),
    (["a*aaa", "aaa*a"], 6),
    (["abc*", "abcde*"], 3),
    (["ab*cd", "ab*wx", "ab*yz"], 6),
    (["*ab*b*b*"], 7),
    (["*a*a*a*a*a*a*a*a*"], 17),
    (["ab*c", "ab*c"], 2),
]


@pytest.mark.parametrize(("values", "complexity"), EVENT_RULER_CASES)
def test_complexity_is_event_rulers_measure(values: list[str], complexity: int) -> None:
    # Given event-ruler's own test cases / When measured bare / Then the same complexity, up to the bound
    measured = wildcard_complexity(values, quote=False)
    assert (
        measured == complexity
        if complexity <= WILDCARD_COMPLEXITY_MAX
        else measured > WILDCARD_COMPLEXITY_MAX
    )


def test_quotes_count_as_eventbridge_matches_strings() -> None:
    # Given "*": bare, one prefix matches; inside quotes, '"' and '"*' both match the input '"'
    assert wildcard_complexity(["*"], quote=False) == 1
    assert wildcard_complexity(["*"]) == 2


def test_three_stack_filters_pass_and_four_do_not() -> None:
    # Given the filters vals-ai/Valkyrie#278 deployed (3) and had refused (4) / Then the same verdicts
    assert wildcard_complexity(stack_wildcards(3)) == WILDCARD_COMPLEXITY_MAX == 9
    assert pattern_refusal(stacks_pattern(3)) is None
    assert (
        pattern_refusal(stacks_pattern(4))
        == "Rule is too complex: wildcard complexity over 9 on detail.stack-id"
    )


def test_wildcard_grammar() -> None:
    assert wildcard_problem("release-*-final") is None
    assert wildcard_problem("a\\*b\\\\") is None
    assert wildcard_problem("a\\") == "Invalid escape character at pos 2"


EVENT = {"source": "aws.ecr", "detail": {"image-tag": "Release-1.2.0", "repository-name": "services/api"}}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["Release-1.2.0"], True),
        (["release-1.2.0"], False),
        ([{"prefix": "Release-"}], True),
        ([{"prefix": "release-"}], False),
        ([{"prefix": {"equals-ignore-case": "RELEASE-"}}], True),
        ([{"suffix": ".0"}], True),
        ([{"suffix": {"equals-ignore-case": "-1.2.0"}}], True),
        ([{"equals-ignore-case": "release-1.2.0"}], True),
        ([{"wildcard": "Release-*.0"}], True),
        ([{"wildcard": "release-*"}], False),
        ([{"wildcard": "Release\\*"}], False),
        ([{"anything-but": {"prefix": "Release"}}], False),
        ([{"anything-but": ["x", "y"]}], True),
        ([{"exists": True}], True),
        ([{"exists": False}], False),
        (["nope", {"prefix": "Rel"}], True),
    ],
)
def test_the_test_matcher_follows_the_user_guide(filters: list[Any], expected: bool) -> None:
    # Given one image-tag filter list / When matched / Then as the user guide's operator table says
    assert matches({"source": ["aws.ecr"], "detail": {"image-tag": filters}}, EVENT) is expected


def test_the_test_matcher_reads_or_and_missing_fields() -> None:
    either = {"detail": {"$or": [{"image-tag": ["x"]}, {"repository-name": [{"prefix": "services/"}]}]}}
    assert matches(either, EVENT)
    assert not matches({"detail": {"missing": [{"anything-but": "x"}]}}, EVENT)
    assert matches({"detail": {"missing": [{"exists": False}]}}, EVENT)
