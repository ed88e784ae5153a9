"""Repository and tag matchers."""

from __future__ import annotations

import re
import time

import pytest

from workflow.models.rules import NameFilter, compile_pattern, parse_semver, tag_matches


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("release-*", "release-1.2.0", True),
        ("release-*", "release-", True),
        ("release-*", "prerelease-1", False),
        ("*-prod", "api-prod", True),
        ("services/*", "services/api/v2", True),
        ("services/*", "service/api", False),
        ("app", "app", True),
        ("app", "app2", False),
        ("a.b", "axb", False),
        ("*", "anything", True),
    ],
)
def test_glob(pattern: str, value: str, expected: bool) -> None:
    # Given a glob pattern / When matched / Then only '*' is special and the match is whole
    assert compile_pattern(pattern).matches(value) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (r"re:v\d+\.\d+\.\d+", "v1.2.3", True),
        (r"re:v\d+\.\d+\.\d+", "v1.2.3-beta", False),
        (r"re:v\d+", "xv1", False),
        (r"re:^v\d+$", "v12", True),
    ],
)
def test_regex_is_a_full_match(pattern: str, value: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(value) is expected


@pytest.mark.parametrize(
    ("pattern", "tag", "expected"),
    [
        ("semver:>=2.0.0", "2.0.0", True),
        ("semver:>=2.0.0", "v2.1.3", True),
        ("semver:>=2.0.0", "1.9.9", False),
        ("semver:>=2.0.0 <3.0.0", "3.0.0", False),
        ("semver:^1.2", "1.9.0", True),
        ("semver:~1.2.0", "1.3.0", False),
        ("semver:>=1.0.0", "2.0.0-rc.1", False),
        ("semver:>=1.0.0", "release-2.0.0", False),
        ("semver:>=1.0.0", "latest", False),
    ],
)
def test_semver_range(pattern: str, tag: str, expected: bool) -> None:
    # Given an npm-style range / When a tag is matched / Then only semver tags in range match
    assert compile_pattern(pattern).matches(tag) is expected


def test_parse_semver_accepts_a_leading_v_only() -> None:
    assert str(parse_semver("v1.2.3")) == "1.2.3"
    assert parse_semver("x1.2.3") is None


def test_exclude_wins_over_include() -> None:
    # Given release-* included and *-rc* excluded
    tags = NameFilter.compile(["release-*"], ["*-rc*"])
    # When / Then
    assert tags.matches("release-1.0.0")
    assert not tags.matches("release-1.0.0-rc1")


def test_tag_matches_explains_its_answer() -> None:
    tags = NameFilter.compile(["release-*"], ["*-rc*"])
    assert tag_matches(tags, "release-1") == (True, "accepted")
    assert tag_matches(tags, "release-1-rc2") == (False, "tag 'release-1-rc2' is excluded by '*-rc*'")
    assert tag_matches(tags, "dev-1") == (False, "tag 'dev-1' matches none of 'release-*'")


@pytest.mark.parametrize("tag", ["-release", ".hidden", "a" * 129, "has space", "ümlaut", ""])
def test_tags_are_checked_against_the_grammar_first(tag: str) -> None:
    # Given a tag ECR would not accept, even though '*' would match it
    accepted, reason = tag_matches(NameFilter.compile(["*"]), tag)
    # Then it is rejected with the grammar as reason
    assert not accepted
    assert "is not a valid image tag" in reason


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("re:(", "is not a valid regular expression for RE2: missing ): ("),
        ("semver:>>1", "is not a valid semver range"),
        ("rel?ase", "only '*' is a wildcard"),
        ("", "is not a pattern"),
    ],
)
def test_bad_patterns_say_what_is_wrong(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_pattern(pattern)


def test_globs_and_regexes_are_case_sensitive_by_default() -> None:
    # Given the exclude / When matched against an upper-case release candidate / Then no match
    assert not compile_pattern("*-rc*").matches("release-1.0.0-RC1")
    assert not compile_pattern(r"re:^v\d+$").matches("V12")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*-rc*", "release-1.0.0-RC1", True),
        ("Release-*", "RELEASE-2", True),
        ("release-*", "prerelease-2", False),
        (r"re:^v\d+$", "V12", True),
        ("semver:^2.0.0", "V2.1.0", True),
        ("semver:^2.0.0", "2.1.0-RC1", False),
    ],
)
def test_case_insensitive_patterns_ignore_case(pattern: str, value: str, expected: bool) -> None:
    # Given a pattern compiled case-insensitive / When matched / Then case does not matter (semver: as ever)
    assert compile_pattern(pattern, case_insensitive=True).matches(value) is expected


def test_a_case_insensitive_exclude_wins_over_an_include() -> None:
    # Given the rule with case ignored / When an upper-case release candidate is checked
    tags = NameFilter.compile(["release-*"], ["*-rc*"], case_insensitive=True)
    accepted, reason = tag_matches(tags, "release-1.0.0-RC1")
    # Then it is excluded, and says by which pattern
    assert (accepted, reason) == (False, "tag 'release-1.0.0-RC1' is excluded by '*-rc*'")
    assert tag_matches(tags, "Release-1.0.0")[0]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"re:(a)\1", "invalid escape sequence: \\1"),
        ("re:(?=v)v.*", "invalid perl operator: (?="),
        ("re:(?<!x)y", "invalid perl operator: (?<"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_the_reason(pattern: str, reason: str) -> None:
    # Given a backreference or a lookaround / When compiled / Then it is refused, saying why
    with pytest.raises(ValueError, match="is not a valid regular expression for RE2") as caught:
        compile_pattern(pattern)
    assert reason in str(caught.value)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("pattern", "value"),
    [("re:(a+)+b", "a" * 40), ("re:(a|aa)*c", "a" * 128), ("*a*a*a*a*a*a*a*a*a*a*b", "a" * 128)],
)
def test_backtracking_patterns_run_in_linear_time(pattern: str, value: str) -> None:
    # Given a pattern that backtracks exponentially (or polynomially) in Python's re
    matcher = compile_pattern(pattern)
    # When matched 100 times against a value it does not match
    started = time.monotonic()
    results = {matcher.matches(value) for _ in range(100)}
    # Then every match returns False at once
    assert results == {False}
    assert time.monotonic() - started < 1.0


def test_regex_keeps_full_match_semantics() -> None:
    assert compile_pattern(r"re:v\d+").matches("v12")
    assert not compile_pattern(r"re:v\d+").matches("v12-rc")
    assert not compile_pattern(r"re:\d+").matches("\u0661\u0662")  # RE2's \d is ASCII-only
    assert compile_pattern("re:(?i)release-.*").matches("RELEASE-1")


def test_long_pattern_is_echoed_cut_short() -> None:
    with pytest.raises(ValueError, match="is not a valid glob") as caught:
        compile_pattern("x" * 100_000 + "?")
    assert len(str(caught.value)) < 300
