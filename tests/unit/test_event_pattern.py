"""The EventBridge pattern compiled from the rules: one EventBridge deploys (no consecutive wildcards,
wildcard complexity and size within its limits) and accepts every push the rules accept, as narrowly as
EventBridge can say it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tests.unit.eventbridge_matcher import matches
from workflow.core.exceptions import InvalidRequest
from workflow.local.eventbridge import pattern_refusal, wildcard_complexity
from workflow.models.config import parse_config
from workflow.pipeline.event_filters import WILDCARD_COMPLEXITY_MAX
from workflow.pipeline.event_filters import wildcard_complexity as complexity_bound
from workflow.pipeline.plan import (
    EVENT_PATTERN_MAX_CHARACTERS,
    compile_event_pattern,
    event_pattern,
    pattern_text,
    plan,
)
from workflow.pipeline.request import parse_request

SOURCE = {"account": "111111111111", "region": "us-east-1"}
DESTINATIONS = [{"account": "222222222222", "regions": ["eu-west-1"]}]
DIGEST = "sha256:" + "b" * 64


def config_of(*rules: dict[str, Any]) -> dict[str, Any]:
    named = [{"name": f"r{i}", "destinations": DESTINATIONS, **rule} for i, rule in enumerate(rules)]
    return {"source": SOURCE, "rules": named}


def tag_filters(*includes: str, **tags: Any) -> list[Any]:
    """The image-tag filters compiled for one rule on `app` including these tag patterns."""
    rule = {"repositories": ["app"], "tags": {"include": list(includes), **tags}}
    return list(event_pattern(parse_config(config_of(rule)))["detail"]["image-tag"])


def push(repository: str, tag: str, action: str = "PUSH") -> dict[str, Any]:
    detail = {"result": "SUCCESS", "repository-name": repository, "image-tag": tag, "action-type": action}
    return {
        "source": "aws.ecr",
        "detail-type": "ECR Image Action",
        "detail": {**detail, "image-digest": DIGEST},
    }


def wildcards(node: Any) -> list[str]:
    """Every wildcard value in a pattern."""
    if isinstance(node, dict):
        found = [node["wildcard"]] if isinstance(node.get("wildcard"), str) else []
        return found + [w for value in node.values() for w in wildcards(value)]
    if isinstance(node, list):
        return [w for item in node for w in wildcards(item)]
    return []


def test_double_stars_compile_to_single_ones_and_edge_stars_to_prefix_and_suffix() -> None:
    # Given globs where `**` means what `*` means (any run of characters)
    # When compiled / Then no wildcard holds `**`, and a leading or trailing star needs no wildcard at all
    assert tag_filters("hotfix-**", "**-final", "a**b***c", "**") == [{"exists": True}]
    assert tag_filters("hotfix-**", "**-final", "a**b***c") == [
        {"prefix": "hotfix-"},
        {"suffix": "-final"},
        {"wildcard": "a*b*c"},
    ]


def test_an_exact_tag_that_reads_like_a_filter_name_is_just_a_tag() -> None:
    assert tag_filters("wildcard", "prefix-*", "a*b") == [
        "wildcard",
        {"prefix": "prefix-"},
        {"wildcard": "a*b"},
    ]


def test_twenty_wildcard_globs_are_widened_until_eventbridge_accepts_them() -> None:
    # Given 4 rules of 5 globs with a star inside (20 wildcard filters, 40 stars, on one field)
    rules = [
        {"repositories": [f"team-{r}"], "tags": {"include": [f"*-{kind}-{r}*" for kind in "abcde"]}}
        for r in range(4)
    ]
    config = parse_config(config_of(*rules))
    # When compiled
    compiled = compile_event_pattern(config)
    text = pattern_text(compiled.pattern)
    # Then EventBridge would accept it: the wildcard complexity is within the bound
    assert pattern_refusal(text) is None
    assert wildcard_complexity(wildcards(compiled.pattern)) <= WILDCARD_COMPLEXITY_MAX
    # And it still accepts what the rules accept
    for r in range(4):
        assert matches(compiled.pattern, push(f"team-{r}", f"x-c-{r}.2"))


@pytest.mark.parametrize(
    ("range_", "accepted", "refused"),
    [
        ("^2.1.0", ["2.1.0", "v2.9.1", "V2.1.0-rc.1"], ["sha-1234", "pr-12", "3.0.0", "1.9.0", "latest"]),
        (">=2.0.0 <3", ["2.0.0", "v2.3.4"], ["3.0.0", "v1.0.0", "sha-1234"]),
        (">=1.0.0", ["1.0.0", "v12.0.1", "V3.0.0"], ["sha-1234", "pr-12", "0.9.0", "latest", "vnext"]),
        ("*", ["0.1.0", "v3.0.0"], ["sha-1234", "main"]),
    ],
)
def test_a_semver_range_keeps_a_tag_filter(range_: str, accepted: list[str], refused: list[str]) -> None:
    # Given a rule whose only tag pattern is a semver range
    config = parse_config(config_of({"repositories": ["app"], "tags": {"include": [f"semver:{range_}"]}}))
    pattern = event_pattern(config)
    # When CI pushes tags / Then versions the range may accept match, other tags start nothing
    for tag in accepted:
        assert matches(pattern, push("app", tag)), tag
    for tag in refused:
        assert not matches(pattern, push("app", tag)), tag


def test_caret_narrows_to_its_major_version_prefixes() -> None:
    assert tag_filters("semver:^2.1.0") == [{"prefix": "2."}, {"prefix": "v2."}, {"prefix": "V2."}]


WILDCARD_TOKEN = st.sampled_from(["a", "b", "-", "*", "\\*", "\\\\"])
WILDCARD = st.lists(WILDCARD_TOKEN, min_size=1, max_size=8).map("".join).filter(lambda v: "**" not in v)


@settings(max_examples=300, deadline=None)
@given(st.lists(WILDCARD, max_size=4))
def test_the_compilers_complexity_is_never_below_eventbridges(values: list[str]) -> None:
    # Given wildcard values (with escaped `*` and `\\`) / When the compiler bounds their complexity
    bound = complexity_bound(values)
    assume(bound <= WILDCARD_COMPLEXITY_MAX)  # past it the compiler widens, whatever the exact figure
    # Then it is at least event-ruler's measure of them together (the stand-in's), and exact for each one
    assert wildcard_complexity(values) <= bound
    assert all(complexity_bound([v]) == wildcard_complexity([v]) for v in values)


# Property: for any valid config, EventBridge accepts the pattern, and it accepts every push the rules do.
WORD = st.text(alphabet="abAB01.-_", min_size=1, max_size=5).filter(lambda s: s[0] not in ".-")
STARS = st.sampled_from(["*", "**", "***"])
GLOB = st.lists(st.one_of(WORD, STARS), min_size=1, max_size=5).map("".join)
VERSION = st.tuples(st.integers(0, 12), st.integers(0, 3), st.integers(0, 3)).map(
    lambda v: ".".join(map(str, v))
)
RANGE = st.one_of(
    st.tuples(st.sampled_from(["", "^", "~", ">=", ">", "<", "<=", "="]), VERSION).map("".join),
    st.tuples(VERSION, VERSION).map(lambda r: f">={r[0]} <{r[1]}"),
    st.tuples(VERSION, VERSION).map(lambda r: f"<{r[0]} || >={r[1]}"),
    st.sampled_from(["*", "1.x", "0.2.x", "^0.0.3", ">=1.0.0-rc.1"]),
)
TAG_PATTERN = st.one_of(
    GLOB, GLOB, RANGE.map("semver:".__add__), st.sampled_from([r"re:^v\d+$", "re:(?i)rel.*"])
)
REPO = st.lists(st.text(alphabet="ab01", min_size=1, max_size=3), min_size=1, max_size=2).map("/".join)
REPO_PATTERN = st.one_of(REPO, st.lists(st.one_of(REPO, STARS), min_size=1, max_size=4).map("".join))
SEMVER_TAG = st.tuples(st.sampled_from(["", "v", "V"]), VERSION, st.sampled_from(["", "-rc.1", "-RC1"]))


def fill(draw: st.DrawFn, glob: str, segment: st.SearchStrategy[str]) -> str:
    """A name the glob accepts: each run of stars replaced by a drawn segment (or nothing)."""
    parts = glob.replace("**", "*").replace("**", "*").split("*")
    return "".join(part + (draw(segment) if i < len(parts) - 1 else "") for i, part in enumerate(parts))


def recase(draw: st.DrawFn, name: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in name)


@st.composite
def configs_and_pushes(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    rules, pushes = [], []
    for _ in range(draw(st.integers(1, 6))):
        repositories = draw(st.lists(REPO_PATTERN, min_size=1, max_size=3))
        includes = draw(st.lists(TAG_PATTERN, min_size=1, max_size=5))
        tags: dict[str, Any] = {"include": includes, "exclude": draw(st.lists(GLOB, max_size=2))}
        if draw(st.booleans()):
            tags["case_insensitive"] = True
        rules.append({"repositories": repositories, "tags": tags, "propagate_deletes": draw(st.booleans())})
        for repository in repositories:
            name = fill(draw, repository, st.sampled_from(["", "a", "b/0"])).strip("/")
            for include in includes:
                if include.startswith("semver:"):
                    tag = "".join(draw(SEMVER_TAG))
                elif include.startswith("re:"):
                    tag = draw(st.sampled_from(["v12", "release-1", "REL-x"]))
                else:
                    tag = fill(draw, include, WORD)
                pushes.append((name, recase(draw, tag) if draw(st.booleans()) else tag))
    pushes += draw(st.lists(st.tuples(REPO, WORD), max_size=4))
    return config_of(*rules), pushes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs_and_pushes())
def test_any_config_compiles_to_a_pattern_eventbridge_deploys_that_accepts_what_the_rules_accept(
    case: tuple[dict[str, Any], list[tuple[str, str]]],
) -> None:
    # Given a random valid config and pushes built from its patterns
    raw, pushes = case
    config = parse_config(raw)
    # When its pattern is compiled
    compiled = compile_event_pattern(config)
    text = pattern_text(compiled.pattern)
    event(compiled.step.split(" of ")[0])
    # Then EventBridge would deploy it: no `**`, complexity and size within its limits
    assert not [w for w in wildcards(compiled.pattern) if "**" in w]
    assert len(text) <= EVENT_PATTERN_MAX_CHARACTERS
    assert pattern_refusal(text) is None, pattern_refusal(text)
    # And every push (or delete, where the rule propagates them) the rules accept matches it
    for repository, tag in pushes:
        for action in ("PUSH", "DELETE"):
            candidate = push(repository, tag, action)
            try:
                request = parse_request(candidate)
            except InvalidRequest:
                continue
            if plan(request, config).targets:
                assert matches(compiled.pattern, candidate), (repository, tag, action, text)
