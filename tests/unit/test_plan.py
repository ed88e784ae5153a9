"""Planning (request + config -> targets) and the EventBridge pattern compiled from the rules."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern

from workflow.core.exceptions import DestinationNotAllowed, InvalidRequest, ReplicationLoop
from workflow.models import config_checks
from workflow.models.config import parse_config
from workflow.pipeline.plan import (
    EVENT_PATTERN_MAX_CHARACTERS,
    compile_event_pattern,
    event_pattern,
    pattern_text,
    plan,
)
from workflow.pipeline.request import parse_request

CONFIG: dict[str, Any] = {
    "source": {"account": "111111111111", "region": "us-east-1"},
    "rules": [
        {
            "name": "production",
            "repositories": ["app", "services/*"],
            "tags": {
                "include": ["release-*", r"re:^v\d+\.\d+\.\d+$", "semver:>=2.0.0"],
                "exclude": ["*-rc*"],
            },
            "destinations": [{"account": "222222222222", "regions": ["eu-west-1", "us-west-2"]}],
            "create_repository": {"tag_mutability": "IMMUTABLE", "scan_on_push": True},
        },
        {
            "name": "dr",
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {
                    "account": "333333333333",
                    "regions": ["eu-central-1"],
                    "repository": "mirror/{repository}",
                    "role_name": "dr-target",
                    "external_id": "xyz",
                }
            ],
        },
    ],
}


def make_plan(payload: dict[str, Any], config: dict[str, Any] = CONFIG) -> Any:
    return plan(parse_request(payload), parse_config(config))


def ecr_event(repository: str, tag: str, action: str = "PUSH") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "1",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "111111111111",
        "time": "2026-11-28T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repository,
            "image-digest": "sha256:" + "b" * 64,
            "action-type": action,
            "image-tag": tag,
        },
    }


def test_release_tag_fans_out_to_every_matching_destination() -> None:
    # Given a release tag of app, which both rules accept
    result = make_plan({"repository": "app", "tag": "release-1.2.0"})
    # Then it goes to the three configured destinations, with the template applied
    assert [(t.account, t.region, t.repository, t.rule) for t in result.targets] == [
        ("222222222222", "eu-west-1", "app", "production"),
        ("222222222222", "us-west-2", "app", "production"),
        ("333333333333", "eu-central-1", "mirror/app", "dr"),
    ]
    first, last = result.targets[0], result.targets[-1]
    assert first.source_image == "111111111111.dkr.ecr.us-east-1.amazonaws.com/app:release-1.2.0"
    assert first.destination_reference == "222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:release-1.2.0"
    assert first.role_arn == "arn:aws:iam::222222222222:role/ecr-replication-target"
    assert first.create_repository is not None
    assert first.create_repository.tag_mutability == "IMMUTABLE"
    assert (last.role_arn, last.external_id) == ("arn:aws:iam::333333333333:role/dr-target", "xyz")


def test_event_digest_pins_the_source() -> None:
    result = plan(parse_request(ecr_event("services/api", "v1.2.3")), parse_config(CONFIG))
    assert {t.source_reference for t in result.targets} == {"sha256:" + "b" * 64}
    assert result.targets[0].source_image.endswith("/services/api@sha256:" + "b" * 64)


def test_excluded_tag_is_skipped_with_every_rules_reason() -> None:
    # Given an rc tag of a services repository: production excludes it, dr does not include services/*
    result = make_plan({"repository": "services/api", "tag": "release-2-rc1"})
    assert result.targets == []
    assert result.skipped_reason is not None
    assert "excluded by '*-rc*'" in result.skipped_reason
    assert "rule 'dr': repository 'services/api' not included" in result.skipped_reason


def test_rc_tag_of_app_still_goes_where_no_exclude_applies() -> None:
    result = make_plan({"repository": "app", "tag": "release-2-rc1"})
    assert [t.rule for t in result.targets] == ["dr"]


def test_skipped_event_plans_nothing() -> None:
    event = ecr_event("app", "release-1")
    del event["detail"]["image-tag"]
    result = plan(parse_request(event), parse_config(CONFIG))
    assert result.targets == []
    assert result.skipped_reason == "push has no tag (untagged images are not replicated)"


def test_manual_input_narrows_to_a_configured_destination() -> None:
    # Given a manual run naming one of the three destinations
    result = make_plan(
        {
            "repository": "app",
            "tag": "release-1",
            "destinations": [{"account": "333333333333", "region": "eu-central-1"}],
            "dryRun": True,
        }
    )
    # Then only that destination is planned, and dry run is carried
    assert [(t.account, t.region) for t in result.targets] == [("333333333333", "eu-central-1")]
    assert result.dry_run


def test_manual_input_cannot_add_a_destination() -> None:
    # Given a destination that no rule names for this repository
    payload = {
        "repository": "app",
        "tag": "release-1",
        "destinations": [
            {"account": "222222222222", "region": "eu-west-1"},
            {"account": "999999999999", "region": "eu-west-1"},
        ],
    }
    # When planned / Then it is refused, naming the stranger
    with pytest.raises(DestinationNotAllowed, match="999999999999/eu-west-1 are not configured"):
        make_plan(payload)


def test_narrowing_to_a_destination_of_a_rule_that_rejects_the_tag_plans_nothing() -> None:
    result = make_plan(
        {
            "repository": "app",
            "tag": "dev-1",
            "destinations": [{"account": "333333333333", "region": "eu-central-1"}],
        }
    )
    assert result.targets == []
    assert "dev-1" in str(result.skipped_reason)


def test_event_from_another_account_is_rejected() -> None:
    event = ecr_event("app", "release-1")
    event["account"] = "444444444444"
    with pytest.raises(InvalidRequest, match="not one of the config's sources \\(111111111111/us-east-1\\)"):
        plan(parse_request(event), parse_config(CONFIG))


def test_two_rules_to_the_same_destination_give_one_target() -> None:
    config = copy.deepcopy(CONFIG)
    config["rules"][1]["destinations"] = [{"account": "222222222222", "regions": ["eu-west-1"]}]
    result = make_plan({"repository": "app", "tag": "release-1"}, config)
    assert [(t.account, t.region, t.rule) for t in result.targets] == [
        ("222222222222", "eu-west-1", "production"),
        ("222222222222", "us-west-2", "production"),
    ]


def test_compiled_pattern_uses_prefixes_and_exists() -> None:
    # Given the two rules / When compiled
    pattern = event_pattern(parse_config(CONFIG))
    # Then each rule is one $or clause; regex/semver tags widen to "exists"
    assert pattern["source"] == ["aws.ecr"]
    assert pattern["detail-type"] == ["ECR Image Action"]
    assert pattern["detail"]["action-type"] == ["PUSH"]
    assert pattern["detail"]["result"] == ["SUCCESS"]
    assert pattern["detail"]["$or"] == [
        {"repository-name": ["app", {"prefix": "services/"}], "image-tag": [{"exists": True}]},
        {"repository-name": ["app"], "image-tag": [{"prefix": "release-"}]},
    ]


def test_pattern_filters_non_matching_pushes() -> None:
    config = copy.deepcopy(CONFIG)
    config["rules"] = [config["rules"][1]]
    matcher = EventPattern.load(json.dumps(event_pattern(parse_config(config))))
    assert matcher.matches_event(ecr_event("app", "release-9"))
    assert not matcher.matches_event(ecr_event("app", "dev-9"))
    assert not matcher.matches_event(ecr_event("other", "release-9"))
    untagged = ecr_event("app", "release-9")
    del untagged["detail"]["image-tag"]
    assert not matcher.matches_event(untagged)


def test_wildcard_in_the_middle_and_match_all() -> None:
    config = copy.deepcopy(CONFIG)
    config["rules"] = [
        {
            "name": "all",
            "tags": {"include": ["*-prod-*"]},
            "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
        }
    ]
    detail = event_pattern(parse_config(config))["detail"]
    assert "repository-name" not in detail
    assert detail["image-tag"] == [{"wildcard": "*-prod-*"}]


# Property: the compiled pattern never rejects a push the rules accept.
SEGMENT = st.text(alphabet="abc01.-_", min_size=1, max_size=4).filter(lambda s: s[0] not in ".-")
REPO = st.lists(st.text(alphabet="abc01", min_size=1, max_size=3), min_size=1, max_size=3).map("/".join)
GLOB = st.lists(st.one_of(SEGMENT, st.just("*")), min_size=1, max_size=4).map("".join)
TAG_PATTERN = st.one_of(
    GLOB,
    st.sampled_from([r"re:^v\d+$", r"re:[a-c]+-\d", "semver:>=1.0.0", "semver:^0.2"]),
)
REPO_PATTERN = st.one_of(REPO, REPO.map(lambda r: r + "*"), st.just("*"), REPO.map(lambda r: "*" + r))


@st.composite
def rules_and_pushes(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    rules = []
    for index in range(draw(st.integers(1, 3))):
        rules.append(
            {
                "name": f"r{index}",
                "repositories": draw(st.lists(REPO_PATTERN, min_size=1, max_size=3)),
                "tags": {
                    "include": draw(st.lists(TAG_PATTERN, min_size=1, max_size=3)),
                    "exclude": draw(st.lists(GLOB, max_size=1)),
                },
                "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
            }
        )
    # Pushes: random names, and names built from the patterns themselves so many are accepted
    from_patterns = [
        (
            p.replace("*", draw(REPO)).strip("/") if "/" not in p.strip("*") else p.replace("*", "x"),
            t.replace("*", draw(SEGMENT))
            if not t.startswith(("re:", "semver:"))
            else draw(st.sampled_from(["v1", "a-1", "1.0.0", "0.2.5", "2.3.4"])),
        )
        for rule in rules
        for p in rule["repositories"]
        for t in rule["tags"]["include"]
    ]
    random_pushes = draw(st.lists(st.tuples(REPO, SEGMENT), max_size=5))
    return {"source": {"account": "111111111111", "region": "us-east-1"}, "rules": rules}, [
        *from_patterns,
        *random_pushes,
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_and_pushes())
def test_pattern_accepts_every_push_the_rules_accept(
    case: tuple[dict[str, Any], list[tuple[str, str]]],
) -> None:
    # Given random rules and pushes
    raw_config, pushes = case
    config = parse_config(raw_config)
    matcher = EventPattern.load(json.dumps(event_pattern(config)))
    for repository, tag in pushes:
        event = ecr_event(repository, tag)
        try:
            request = parse_request(event)
        except InvalidRequest:
            continue
        # When the rules accept the push / Then the EventBridge pattern (as moto evaluates it) matches it
        if plan(request, config).targets:
            assert matcher.matches_event(event), (repository, tag, event_pattern(config))


# Within EventBridge's 2,048-character limit, however big the config.
def ten_team_rules() -> dict[str, Any]:
    """10 rules of 5 repository globs and 3 tag globs each: 2,760 characters as an exact pattern."""
    rules = [
        {
            "name": f"team-{i}",
            "repositories": [f"team-{i}/service-{j}-*" for j in range(5)],
            "tags": {"include": [f"release-{i}.*", f"hotfix-{i}-*", f"*-stable-{i}"]},
            "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
        }
        for i in range(10)
    ]
    return {"source": {"account": "111111111111", "region": "us-east-1"}, "rules": rules}


def test_a_small_config_keeps_its_exact_pattern() -> None:
    # Given the two-rule config / When compiled / Then nothing is widened
    assert compile_event_pattern(parse_config(CONFIG)).step == "exact"


def test_ten_rules_widen_to_repository_filters_within_the_limit() -> None:
    # Given 10 rules whose exact pattern is over 2,048 characters
    config = parse_config(ten_team_rules())
    # When compiled
    compiled = compile_event_pattern(config)
    text = pattern_text(compiled.pattern)
    # Then the tag filters are dropped, the 50 repository prefixes kept, and it fits
    assert compiled.step == "tag filters dropped"
    assert len(text) <= EVENT_PATTERN_MAX_CHARACTERS
    assert len(compiled.pattern["detail"]["repository-name"]) == 50
    matcher = EventPattern.load(text)
    assert matcher.matches_event(ecr_event("team-3/service-4-api", "release-3.1"))
    assert not matcher.matches_event(ecr_event("team-3/other", "release-3.1"))


def test_long_repository_names_widen_to_shorter_prefixes() -> None:
    # Given one rule naming 40 repositories of 100 characters each
    config = copy.deepcopy(CONFIG)
    names = [f"group-{i % 4}/" + "x" * 90 + f"{i:03d}" for i in range(40)]
    config["rules"] = [{**config["rules"][1], "repositories": names}]
    # When compiled
    compiled = compile_event_pattern(parse_config(config))
    # Then the names are cut to prefixes that still cover every one of them, within the limit
    assert compiled.step.startswith("repository prefixes of ")
    assert len(pattern_text(compiled.pattern)) <= EVENT_PATTERN_MAX_CHARACTERS
    matcher = EventPattern.load(pattern_text(compiled.pattern))
    assert all(matcher.matches_event(ecr_event(name, "release-1")) for name in names)
    assert not matcher.matches_event(ecr_event("elsewhere", "release-1"))


WORD = st.text(alphabet="abc01", min_size=2, max_size=30)
LONG_REPO = st.lists(WORD, min_size=1, max_size=4).map("/".join)
BIG_REPO_PATTERN = st.one_of(LONG_REPO, LONG_REPO.map(lambda r: r + "*"), LONG_REPO.map(lambda r: "*" + r))
TAG_GLOB = st.lists(st.one_of(WORD, st.just("*")), min_size=1, max_size=4).map("".join)
BIG_TAG_PATTERN = st.one_of(TAG_GLOB, TAG_GLOB, TAG_GLOB, TAG_PATTERN)


@st.composite
def big_rules_and_pushes(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    big = draw(st.booleans())
    rules = []
    for index in range(draw(st.integers(8, 15) if big else st.integers(1, 4))):
        rules.append(
            {
                "name": f"r{index}",
                "repositories": draw(st.lists(BIG_REPO_PATTERN, min_size=4 if big else 1, max_size=12)),
                "tags": {"include": draw(st.lists(BIG_TAG_PATTERN, min_size=1, max_size=5))},
                "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                "propagate_deletes": draw(st.booleans()),
            }
        )
    pushes = [
        (
            pattern.replace("*", draw(WORD)),
            tag.replace("*", draw(WORD))
            if not tag.startswith(("re:", "semver:"))
            else draw(st.sampled_from(["v1", "a-1", "1.0.0", "0.2.5", "2.3.4"])),
        )
        for rule in rules
        for pattern in rule["repositories"]
        for tag in rule["tags"]["include"]
    ]
    return {"source": {"account": "111111111111", "region": "us-east-1"}, "rules": rules}, pushes


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(big_rules_and_pushes())
def test_any_config_fits_and_every_accepted_push_matches(
    case: tuple[dict[str, Any], list[tuple[str, str]]],
) -> None:
    # Given a random valid config, up to 15 rules of 12 long repository patterns and 5 tag patterns
    raw_config, pushes = case
    config = parse_config(raw_config)
    # When its pattern is compiled
    compiled = compile_event_pattern(config)
    text = pattern_text(compiled.pattern)
    event(compiled.step.split(" of ")[0])
    # Then it is within EventBridge's limit
    assert len(text) <= EVENT_PATTERN_MAX_CHARACTERS
    # And every push (and delete, for rules that propagate them) the rules accept matches it, as moto's
    # EventBridge evaluates it
    matcher = EventPattern.load(text)
    for repository, tag in pushes:
        for action in ("PUSH", "DELETE"):
            push = ecr_event(repository, tag, action)
            try:
                request = parse_request(push)
            except InvalidRequest:
                continue
            if plan(request, config).targets:
                assert matcher.matches_event(push), (repository, tag, action, compiled.step)


@pytest.mark.timeout(10)
def test_a_backtracking_tag_pattern_plans_at_once() -> None:
    # Given a rule whose tag pattern backtracks exponentially in Python's re
    config = copy.deepcopy(CONFIG)
    config["rules"] = [{**config["rules"][1], "tags": {"include": ["re:(a+)+b"]}}]
    # When a 40-character tag of a's is planned / Then it is skipped, and at once
    started = time.monotonic()
    result = make_plan({"repository": "app", "tag": "a" * 40}, config)
    assert result.targets == []
    assert "matches none of 're:(a+)+b'" in (result.skipped_reason or "")
    assert time.monotonic() - started < 1.0


# Deletions follow, for the rules that opt in (propagate_deletes).
def with_deletes(config: dict[str, Any] = CONFIG) -> dict[str, Any]:
    """CONFIG with deletes propagated by the "dr" rule only."""
    changed = copy.deepcopy(config)
    changed["rules"][1]["propagate_deletes"] = True
    return changed


def test_without_opt_in_the_pattern_matches_pushes_only() -> None:
    # Given the config with no rule propagating deletes / When compiled
    matcher = EventPattern.load(pattern_text(event_pattern(parse_config(CONFIG))))
    # Then a deleted release tag matches nothing
    assert matcher.matches_event(ecr_event("app", "release-9"))
    assert not matcher.matches_event(ecr_event("app", "release-9", "DELETE"))


def test_the_pattern_matches_deletes_for_the_rules_that_opt_in_only() -> None:
    # Given "dr" (app, release-*) propagating deletes and "production" (app, services/*) not
    compiled = compile_event_pattern(parse_config(with_deletes()))
    matcher = EventPattern.load(pattern_text(compiled.pattern))
    # Then a delete in dr's repository matches, one only production accepts does not, and pushes still do
    assert compiled.step == "exact"
    assert matcher.matches_event(ecr_event("app", "release-9", "DELETE"))
    assert not matcher.matches_event(ecr_event("services/api", "release-9", "DELETE"))
    assert matcher.matches_event(ecr_event("services/api", "release-9"))
    assert not matcher.matches_event(ecr_event("app", "release-9", "SCAN"))


def test_widened_patterns_with_deletes_still_fit_and_match_them() -> None:
    # Given ten rules (over the limit as an exact pattern), one of them propagating deletes
    raw = ten_team_rules()
    raw["rules"][3]["propagate_deletes"] = True
    compiled = compile_event_pattern(parse_config(raw))
    text = pattern_text(compiled.pattern)
    # Then the widened pattern fits and matches that rule's deletes and every rule's pushes
    assert compiled.step != "exact"
    assert len(text) <= EVENT_PATTERN_MAX_CHARACTERS
    matcher = EventPattern.load(text)
    assert matcher.matches_event(ecr_event("team-3/service-4-api", "release-3.1", "DELETE"))
    assert matcher.matches_event(ecr_event("team-5/service-1-x", "release-5.1"))


def test_a_delete_plans_targets_of_the_opted_in_rules_pinned_to_the_event_digest() -> None:
    # Given a delete event for app:release-9, which both rules accept and only dr propagates
    result = make_plan(ecr_event("app", "release-9", "DELETE"), with_deletes())
    # Then only dr's destination is a target: a delete of that tag, checked against the event's digest
    assert result.action == "delete"
    assert [(t.account, t.repository, t.action) for t in result.targets] == [
        ("333333333333", "mirror/app", "delete")
    ]
    assert result.targets[0].source_reference == "sha256:" + "b" * 64
    assert result.targets[0].create_repository is None


def test_a_delete_no_rule_propagates_plans_nothing_and_says_why() -> None:
    # Given a delete event and no rule propagating deletes / When planned / Then nothing, with each reason
    result = make_plan(ecr_event("app", "release-9", "DELETE"))
    assert result.targets == []
    assert "does not propagate deletes" in (result.skipped_reason or "")


def test_a_target_a_rule_would_select_again_is_refused_by_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a config that copies every repository to mirror/... in the source's own account and Region, loaded
    # without the loop check (an older `validate`, a hand-edited deployment): the Plan is the second guard
    monkeypatch.setattr(config_checks, "_loops", lambda config: [])
    looping = copy.deepcopy(CONFIG)
    looping["rules"].append(
        {
            "name": "all",
            "repositories": ["*"],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {"account": "111111111111", "regions": ["us-east-1"], "repository": "mirror/{repository}"}
            ],
        }
    )
    payload = {"repository": "app", "tag": "release-1.2.0"}
    # When app:release-1.2.0 is planned / Then the Plan fails by name, naming the chain and the rule
    with pytest.raises(ReplicationLoop) as caught:
        make_plan(payload, looping)
    assert str(caught.value).startswith(
        "app:release-1.2.0 -> mirror/app:release-1.2.0 in 111111111111/us-east-1 is selected again by rule 'all'"
    )
    # And with rule `all` over app alone, no rule selects mirror/app: that target is planned
    looping["rules"][2]["repositories"] = ["app"]
    targets = make_plan({"repository": "app", "tag": "release-1.2.0"}, looping).targets
    assert ("111111111111", "us-east-1", "mirror/app") in {
        (t.account, t.region, t.repository) for t in targets
    }


# PutImage pacing: ECR allows 10 PutImage requests a second per account and Region (Amazon ECR service quotas),
# and the Map runs up to max_concurrency copy builds at once, each pacing its own manifest PUTs.


def _paced_config(repositories: int, regions: list[str], max_concurrency: int) -> dict[str, Any]:
    """`repositories` rules that each send `app` to account 222222222222 in `regions`, under its own prefix."""
    return {
        "source": {"account": "111111111111", "region": "us-east-1"},
        "max_concurrency": max_concurrency,
        "rules": [
            {
                "name": f"r{n}",
                "repositories": ["app"],
                "tags": {"include": ["release-*"]},
                "destinations": [
                    {"account": "222222222222", "regions": regions, "repository": f"m{n}/{{repository}}"}
                ],
            }
            for n in range(repositories)
        ],
    }


def test_each_build_gets_its_share_of_the_put_image_quota_of_its_account_and_region() -> None:
    # Given 4 destination repositories in 222222222222/eu-west-1 and 4 in us-west-2, 4 builds at once
    config = _paced_config(4, ["eu-west-1", "us-west-2"], 4)
    # When planned
    targets = make_plan({"repository": "app", "tag": "release-1"}, config).targets
    # Then each build paces its manifest PUTs at a quarter of the 10/s quota: 4 at once stay within it
    assert len(targets) == 8
    assert {t.put_rate for t in targets} == {2.5}


def test_a_lone_destination_in_its_account_and_region_gets_the_whole_quota() -> None:
    # Given the example-style config: one repository per account and Region
    targets = make_plan({"repository": "app", "tag": "release-1"}).targets
    # Then every build may use the whole quota of its account and Region
    assert {t.put_rate for t in targets} == {10.0}


@settings(max_examples=60, deadline=None)
@given(
    repositories=st.integers(min_value=1, max_value=12),
    max_concurrency=st.integers(min_value=1, max_value=40),
    regions=st.lists(st.sampled_from(["eu-west-1", "us-west-2", "ap-south-1"]), min_size=1, unique=True),
)
def test_concurrent_builds_never_exceed_the_put_image_quota_together(
    repositories: int, max_concurrency: int, regions: list[str]
) -> None:
    # Given any number of destination repositories per account and Region, and any max_concurrency
    targets = make_plan(
        {"repository": "app", "tag": "release-1"}, _paced_config(repositories, regions, max_concurrency)
    ).targets
    # When the Map runs as many builds at once as it may (max_concurrency, of every target)
    for region in regions:
        rates = sorted((t.put_rate or 0.0 for t in targets if t.region == region), reverse=True)
        running = rates[: min(max_concurrency, len(targets))]
        # Then the builds writing to one account and Region together pace at most 10 PutImage a second
        assert 0 < sum(running) <= 10.0
