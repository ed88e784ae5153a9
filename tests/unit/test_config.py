"""Config loading and validation: every problem is reported at once, with its path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflow.cli import main
from workflow.core.exceptions import InvalidConfig
from workflow.core.grammar import shown
from workflow.models.config import load_config, parse_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "replication.yaml"

BASE: dict[str, Any] = {
    "source": {"account": "111111111111", "region": "us-east-1"},
    "rules": [
        {
            "name": "production",
            "repositories": ["app", "services/*"],
            "tags": {"include": ["release-*"], "exclude": ["*-rc*"]},
            "destinations": [{"account": "222222222222", "regions": ["eu-west-1", "us-west-2"]}],
        }
    ],
}


def with_changes(**paths: Any) -> dict[str, Any]:
    """BASE with `rules.0.destinations.0.account=...`-style changes applied."""
    data = copy.deepcopy(BASE)
    for dotted, value in paths.items():
        *parents, leaf = dotted.split("__")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if leaf.isdigit():
            node[int(leaf)] = value
        else:
            node[leaf] = value
    return data


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        parse_config(data)
    return caught.value.problems


def test_example_config_is_valid() -> None:
    # Given the shipped example / When it is loaded
    config = load_config(EXAMPLE)
    # Then it has two rules and three destinations, and `on: failure` stays a string in YAML
    assert [rule.name for rule in config.rules] == ["production", "disaster-recovery"]
    assert "3 destination(s) in 2 account(s)" in config.summary_line()
    assert config.notifications.on == "failure"


def test_json_config_loads(tmp_path: Path) -> None:
    # Given the base config as JSON
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(BASE))
    # When it is loaded / Then its destinations are there
    assert load_config(path).rules[0].destinations[0].regions == ["eu-west-1", "us-west-2"]


def test_bad_account_names_its_path() -> None:
    # Given a 5-digit account id / When validated / Then the error names the path and the value
    problems = problems_of(with_changes(rules__0__destinations__0__account="12345"))
    assert problems == ["rules[0].destinations[0].account: '12345' is not a 12-digit AWS account id"]


def test_unknown_region_is_rejected() -> None:
    problems = problems_of(with_changes(rules__0__destinations__0__regions=["eu-west-1", "eu-westeros-1"]))
    assert problems == [
        "rules[0].destinations[0].regions: 'eu-westeros-1' is not an AWS Region where ECR is available"
    ]


def test_source_is_required_and_validated() -> None:
    data = copy.deepcopy(BASE)
    data["source"] = {"account": "1", "region": "nowhere"}
    problems = problems_of(data)
    assert "source.account: '1' is not a 12-digit AWS account id" in problems
    assert "source.region: 'nowhere' is not an AWS Region where ECR is available" in problems
    del data["source"]
    assert problems_of(data) == ["source: required field is missing (or list several under sources)"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Mirror/{repository}", "does not render to a valid ECR repository name"),
        ("mirror/{repo}", "is not a valid repository template"),
        ("mirror//{repository}", "does not render to a valid ECR repository name"),
    ],
)
def test_bad_repository_template(template: str, message: str) -> None:
    problems = problems_of(with_changes(rules__0__destinations__0__repository=template))
    assert len(problems) == 1
    assert problems[0].startswith("rules[0].destinations[0].repository: ")
    assert message in problems[0]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("re:(", "is not a valid regular expression for RE2: missing ): ("),
        ("semver:>=banana", "is not a valid semver range"),
        ("release-[0-9]", "only '*' is a wildcard"),
        ("", "is not a pattern"),
    ],
)
def test_tag_patterns_must_compile(pattern: str, message: str) -> None:
    problems = problems_of(with_changes(rules__0__tags__include=["release-*", pattern]))
    assert len(problems) == 1
    assert problems[0].startswith("rules[0].tags.include: ")
    assert message in problems[0]


def test_duplicate_destination_is_rejected() -> None:
    data = copy.deepcopy(BASE)
    data["rules"][0]["destinations"].append({"account": "222222222222", "regions": ["us-west-2"]})
    assert problems_of(data) == [
        "rules[0].destinations[1]: duplicate destination 222222222222/us-west-2 (already in destinations[0])"
    ]


def _with_destination_accounts(count: int) -> dict[str, Any]:
    """BASE fanning out to `count` accounts in its two Regions (2 x count destinations)."""
    data = copy.deepcopy(BASE)
    data["rules"][0]["destinations"] = [
        {"account": f"{200000000000 + n:012d}", "regions": ["eu-west-1", "us-west-2"]} for n in range(count)
    ]
    return data


def test_more_destinations_than_one_execution_can_hold_are_rejected() -> None:
    # Given 1,001 accounts in 2 Regions (2,002 destinations), When parsed, Then the limit is named
    assert problems_of(_with_destination_accounts(1001)) == [
        "rules: 2002 destinations (account, Region, repository) in all; at most 2000 per image "
        "(the largest fan-out measured: README, 'A fleet of destinations')"
    ]
    # And 2,000 destinations are fine
    assert len(parse_config(_with_destination_accounts(1000)).rules[0].destinations) == 1000


@pytest.mark.parametrize("external_id", ["x", "a" * 1225, "has space", "naïve", "semi;colon"])
def test_invalid_external_id_names_its_path(external_id: str) -> None:
    # Given an ExternalId STS would refuse at every AssumeRole / When validated
    problems = problems_of(with_changes(rules__0__destinations__0__external_id=external_id))
    # Then the error names the path and the rule
    assert problems == [
        f"rules[0].destinations[0].external_id: {shown(external_id)} is not a valid ExternalId "
        "(2 to 1224 characters of letters, digits and _+=,.@:/-)"
    ]


@pytest.mark.parametrize("external_id", ["dr", "a" * 1224, "Team_A+b=c,d.e@f:g/h-1"])
def test_valid_external_id_is_kept(external_id: str) -> None:
    config = parse_config(with_changes(rules__0__destinations__0__external_id=external_id))
    assert config.rules[0].destinations[0].external_id == external_id


def test_destination_equal_to_source_is_a_loop() -> None:
    # Given a destination that is the source account and Region with the default template
    data = copy.deepcopy(BASE)
    data["rules"][0]["destinations"].append({"account": "111111111111", "regions": ["us-east-1"]})
    # When validated / Then one problem names the chain
    assert problems_of(data) == [
        "rules[0].destinations[1]: app -> app (the source itself) is selected again by rule 'production' "
        "(loop in 111111111111/us-east-1)"
    ]


def test_same_account_and_region_with_another_repository_is_not_a_loop() -> None:
    # Given app and services/* copied to mirror/... in the source account and Region, which no rule selects
    data = copy.deepcopy(BASE)
    data["rules"][0]["destinations"].append(
        {"account": "111111111111", "regions": ["us-east-1"], "repository": "mirror/{repository}"}
    )
    # When validated / Then it is kept
    assert len(parse_config(data).rules[0].destinations) == 2


def looping(repositories: list[str], template: str = "mirror/{repository}", **other: Any) -> dict[str, Any]:
    """BASE plus a rule `all` over `repositories` (release-* unless `other` says) copying into the source's
    own account and Region through `template`."""
    data = copy.deepcopy(BASE)
    data["rules"].append(
        {
            "name": "all",
            "repositories": repositories,
            "tags": other.get("tags", {"include": ["release-*"]}),
            "destinations": [{"account": "111111111111", "regions": ["us-east-1"], "repository": template}],
        }
    )
    return data


@pytest.mark.parametrize(
    ("repositories", "template", "problem"),
    [
        (["*"], "mirror/{repository}", "a -> mirror/a is selected again by rule 'all'"),
        (["app", "mirror/*"], "mirror/{repository}", "app -> mirror/app is selected again by rule 'all'"),
        (
            ["re:^(app|mirror/.+)$"],
            "mirror/{repository}",
            "app -> mirror/app is selected again by rule 'all'",
        ),
        (["app", "app-copy"], "{repository}-copy", "app -> app-copy is selected again by rule 'all'"),
        (["app", "mirror"], "mirror", "app -> mirror is selected again by rule 'all'"),
    ],
    ids=["glob-all", "glob-prefix", "regex", "suffix-template", "constant-template"],
)
def test_a_destination_in_the_source_place_that_a_rule_selects_again_is_a_loop(
    repositories: list[str], template: str, problem: str
) -> None:
    # Given rule `all` whose copies in the source account and Region its own repositories select again
    # When validated / Then one problem names the first link of the chain and the place
    assert problems_of(looping(repositories, template)) == [
        f"rules[1].destinations[0]: {problem} (loop in 111111111111/us-east-1)"
    ]


def test_a_rule_whose_tags_cannot_meet_is_not_a_loop() -> None:
    # Given app:release-* copied to mirror/app in the source place, and rule `mirror` over mirror/* with tags
    # the first rule never sends (dev-*), or sends but excludes (release-* minus release-*)
    data = looping(["app"])
    data["rules"].append({**copy.deepcopy(data["rules"][1]), "name": "dev", "repositories": ["mirror/*"]})
    data["rules"][2]["tags"] = {"include": ["dev-*", "release-*"], "exclude": ["release-*"]}
    data["rules"][2]["destinations"] = [{"account": "222222222222", "regions": ["eu-west-1"]}]
    # When validated / Then it is kept
    assert [rule.name for rule in parse_config(data).rules] == ["production", "all", "dev"]
    # And with release-* no longer excluded, rule `dev` would copy mirror/app again: refused, naming `dev`
    data["rules"][2]["tags"] = {"include": ["dev-*", "release-*"]}
    assert problems_of(data) == [
        "rules[1].destinations[0]: app -> mirror/app is selected again by rule 'dev' (loop in 111111111111/us-east-1)"
    ]


def test_a_regex_the_rendered_names_cannot_match_is_not_a_loop() -> None:
    # Given copies to mirror/app, and a rule over mirror/ followed by digits only
    data = looping(["app"])
    data["rules"][0]["repositories"] = ["re:^mirror/[0-9]+$"]
    # When validated / Then it is kept: mirror/app has letters
    assert len(parse_config(data).rules) == 2


def test_what_cannot_be_decided_exactly_is_refused_and_says_so() -> None:
    # Given copies to mirror/app, and a rule whose regex uses RE2 syntax the decision procedure lacks (a flag)
    data = looping(["app"])
    data["rules"][0]["repositories"] = ["re:(?i)MIRROR/[0-9]+"]
    # When validated / Then it is refused as a possible loop, saying what was widened
    assert problems_of(data) == [
        "rules[1].destinations[0]: app -> mirror/app is selected again by rule 'production' (loop in "
        "111111111111/us-east-1); decided conservatively: 're:(?i)MIRROR/[0-9]+' taken as any name"
    ]


def test_validate_refuses_a_loop_in_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a config file whose rule `all` copies every repository to mirror/... in the source's own place
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump(looping(["*"])))
    # When validated from the command line
    code = main(["validate", str(path)])
    # Then exit 2, nothing on stdout, one line naming the chain
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "rules[1].destinations[0]: a -> mirror/a is selected again by rule 'all'" in err


def test_all_problems_are_reported_at_once() -> None:
    # Given a config with four independent mistakes
    data = copy.deepcopy(BASE)
    data["rules"][0]["destinations"][0]["account"] = "abc"
    data["rules"][0]["tags"]["exclude"] = ["re:["]
    data["rules"][0]["colour"] = "blue"
    data["max_concurrency"] = 0
    # When validated / Then each is reported, with its path
    problems = problems_of(data)
    assert len(problems) == 4
    assert {p.split(":")[0] for p in problems} == {
        "rules[0].destinations[0].account",
        "rules[0].tags.exclude",
        "rules[0].colour",
        "max_concurrency",
    }


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [unclosed")
    with pytest.raises(InvalidConfig, match="not valid YAML"):
        load_config(broken)
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text(yaml.safe_dump(["a"]))
    with pytest.raises(InvalidConfig, match="expected a mapping"):
        load_config(not_a_mapping)


def test_bad_email_and_notification_mode() -> None:
    data = copy.deepcopy(BASE)
    data["notifications"] = {"emails": ["ops"], "on": "sometimes"}
    problems = problems_of(data)
    assert "notifications.emails: not an email address: 'ops'" in problems
    assert any(p.startswith("notifications.on: ") for p in problems)


def test_endpoint_override_and_default_ecr_host() -> None:
    data = copy.deepcopy(BASE)
    data["endpoints"] = [
        {"account": "222222222222", "region": "eu-west-1", "registry": "127.0.0.1:5001", "insecure": True}
    ]
    config = parse_config(data)
    assert config.endpoint("222222222222", "eu-west-1") == ("127.0.0.1:5001", True)
    assert config.endpoint("222222222222", "us-west-2") == (
        "222222222222.dkr.ecr.us-west-2.amazonaws.com",
        False,
    )
    assert config.endpoint("222222222222", "cn-north-1")[0].endswith(".amazonaws.com.cn")


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


MIXED_EXTERNAL_IDS: dict[str, Any] = {
    "source": {"account": "111111111111", "region": "us-east-1"},
    "rules": [
        {
            "name": name,
            "repositories": [repository],
            "tags": {"include": ["v*"]},
            "destinations": [{"account": "222222222222", "regions": ["eu-west-1"], **extra}],
        }
        for name, repository, extra in [("a", "app", {"external_id": "team-a"}), ("b", "web", {})]
    ],
}


def test_one_role_with_and_without_external_id_names_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two rules sending to one account's role, one with external_id and one without
    path = write(tmp_path, "mixed.yaml", yaml.safe_dump(MIXED_EXTERNAL_IDS))
    # When validated / Then the second destination's external_id is named, and `validate` exits 2
    assert problems_of(MIXED_EXTERNAL_IDS) == [
        "rules[1].destinations[0].external_id: missing here but set in rules[0].destinations[0], which uses "
        "the same role 'ecr-replication-target' in account 222222222222; its trust policy can require an "
        "ExternalId only of every destination or of none"
    ]
    assert main(["validate", str(path)]) == 2
    assert "rules[1].destinations[0].external_id: missing here" in capsys.readouterr().err


def test_different_roles_in_one_account_may_differ_in_external_id() -> None:
    data = copy.deepcopy(MIXED_EXTERNAL_IDS)
    data["rules"][1]["destinations"][0]["role_name"] = "other-target"
    assert len(parse_config(data).rules) == 2


def test_kms_key_named_by_alias_is_refused() -> None:
    # Given a customer-managed key named by alias, which IAM cannot grant on
    data = with_changes(rules__0__create_repository={"encryption": "KMS", "kms_key": "alias/ecr"})
    # Then the config names the setting (synth refused it before; validate passed it)
    assert problems_of(data) == [
        "rules[0].create_repository.kms_key: 'alias/ecr' is not a KMS key ARN or key id (the destination "
        "role is granted on the key, which IAM cannot name by alias)"
    ]


def test_tag_mutability_with_exclusions_takes_its_wildcard_filters() -> None:
    # Given immutable tags except dev-* and test-* (filter_type defaults to WILDCARD, ECR's only type)
    create = {
        "tag_mutability": "IMMUTABLE_WITH_EXCLUSION",
        "tag_mutability_exclusion_filters": [
            {"filter": "dev-*"},
            {"filter": "test-*", "filter_type": "WILDCARD"},
        ],
    }
    # When parsed / Then both filters are kept as WILDCARD
    settings = parse_config(with_changes(rules__0__create_repository=create)).rules[0].create_repository
    assert settings is not None
    assert [(f.filter, f.filter_type) for f in settings.tag_mutability_exclusion_filters or []] == [
        ("dev-*", "WILDCARD"),
        ("test-*", "WILDCARD"),
    ]


@pytest.mark.parametrize(
    ("create", "problem"),
    [
        ({"tag_mutability": "IMMUTABLE_WITH_EXCLUSION"}, "needs tag_mutability_exclusion_filters (1 to 5)"),
        (
            {"tag_mutability": "MUTABLE", "tag_mutability_exclusion_filters": [{"filter": "dev-*"}]},
            "apply only to tag_mutability IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, not MUTABLE",
        ),
        (
            {"tag_mutability": "MUTABLE_WITH_EXCLUSION", "tag_mutability_exclusion_filters": []},
            "tag_mutability_exclusion_filters: List should have at least 1 item",
        ),
        (
            {
                "tag_mutability": "MUTABLE_WITH_EXCLUSION",
                "tag_mutability_exclusion_filters": [{"filter": f"r{i}-*"} for i in range(6)],
            },
            "tag_mutability_exclusion_filters: List should have at most 5 items",
        ),
        (
            {
                "tag_mutability": "MUTABLE_WITH_EXCLUSION",
                "tag_mutability_exclusion_filters": [{"filter": "dev/*"}],
            },
            "tag_mutability_exclusion_filters[0].filter: String should match pattern",
        ),
        (
            {
                "tag_mutability": "MUTABLE_WITH_EXCLUSION",
                "tag_mutability_exclusion_filters": [{"filter": "a" * 129}],
            },
            "tag_mutability_exclusion_filters[0].filter: String should match pattern",
        ),
        (
            {
                "tag_mutability": "MUTABLE_WITH_EXCLUSION",
                "tag_mutability_exclusion_filters": [{"filter": "dev-*", "filter_type": "REGEX"}],
            },
            "tag_mutability_exclusion_filters[0].filter_type: Input should be 'WILDCARD'",
        ),
        ({"tag_mutability": "SOMETIMES"}, "tag_mutability: Input should be 'MUTABLE', 'IMMUTABLE', "),
    ],
    ids=["mode-without-filters", "filters-without-mode", "empty", "six", "charset", "length", "type", "mode"],
)
def test_tag_mutability_exclusions_are_checked_as_ecr_checks_them(
    create: dict[str, Any], problem: str
) -> None:
    # Given create_repository settings ECR's CreateRepository would refuse
    data = with_changes(rules__0__create_repository=create)
    # When validated / Then one problem names the setting under rules[0].create_repository
    [found] = problems_of(data)
    assert found.startswith("rules[0].create_repository"), found
    assert problem in found


def test_duplicate_yaml_keys_name_both_lines(tmp_path: Path) -> None:
    # Given a second `source:` in one file
    text = yaml.safe_dump(BASE) + "source: {account: '333333333333', region: us-east-1}\n"
    lines = text.splitlines()
    second = len(lines)
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("source:"))
    path = write(tmp_path, "dup.yaml", text)
    # When loaded / Then it is refused, naming both lines
    with pytest.raises(
        InvalidConfig, match=f"duplicate key 'source' on line {second} \\(first on line {first}\\)"
    ):
        load_config(path)


def test_duplicate_json_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.json", '{"source": {}, "rules": [], "source": {}}')
    with pytest.raises(InvalidConfig, match="duplicate key 'source'"):
        load_config(path)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"max_concurrency": True}, "max_concurrency"),
        ({"max_concurrency": "4"}, "max_concurrency"),
        ({"max_concurrency": 4.0}, "max_concurrency"),
        ({"notifications": {"on": "failure", "emails": "a@example.com"}}, "notifications.emails"),
    ],
)
def test_types_are_strict(changes: dict[str, Any], path: str) -> None:
    # Given a bool (or a string, or a float) where an int is expected / Then it is refused, not coerced
    problems = problems_of({**copy.deepcopy(BASE), **changes})
    assert [p.split(":")[0] for p in problems] == [path]


def test_create_repository_flags_are_strict() -> None:
    data = with_changes(rules__0__create_repository={"scan_on_push": "yes"})
    assert [p.split(":")[0] for p in problems_of(data)] == ["rules[0].create_repository.scan_on_push"]


@pytest.mark.parametrize("account", ["\u0661" * 12, "\uff11" * 12, "11111111111\u00b2"])
def test_account_ids_are_ascii_digits(account: str) -> None:
    assert problems_of(with_changes(rules__0__destinations__0__account=account)) == [
        f"rules[0].destinations[0].account: {account!r} is not a 12-digit AWS account id"
    ]


@pytest.mark.parametrize(
    "registry", ["localhost:5000; rm -rf /", "$(id)", "host:0", "host:70000", "host:", "a..b", "http://host"]
)
def test_endpoint_registry_must_be_host_and_port(registry: str) -> None:
    data = copy.deepcopy(BASE)
    data["endpoints"] = [{"account": "222222222222", "region": "eu-west-1", "registry": registry}]
    assert problems_of(data) == [
        f"endpoints[0].registry: {registry!r} is not a registry host[:port] (port 1-65535)"
    ]


@pytest.mark.parametrize("registry", ["127.0.0.1:5001", "localhost", "[::1]:65535", "registry.example.com:1"])
def test_endpoint_registry_host_and_port_are_kept(registry: str) -> None:
    data = copy.deepcopy(BASE)
    data["endpoints"] = [{"account": "222222222222", "region": "eu-west-1", "registry": registry}]
    assert parse_config(data).endpoints[0].registry == registry


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000, "not valid YAML: nested too deeply to parse"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "not valid JSON: nested too deeply to parse"),
        (
            "latin1.yaml",
            "source: caf\xe9\n".encode("latin-1"),
            "not UTF-8 text (byte 11: invalid continuation byte)",
        ),
    ],
)
def test_deep_nesting_and_bad_encoding_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str | bytes, message: str
) -> None:
    # Given a file nested thousands of levels deep, or not UTF-8
    path = write(tmp_path, name, text)
    # When validated / Then one line names the file and the problem, exit status 2, no traceback
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: {message}"]
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_a_huge_unknown_key_is_echoed_cut_short() -> None:
    data = {**copy.deepcopy(BASE), "k" * 100_000: 1}
    (problem,) = problems_of(data)
    assert problem.endswith(": unknown field")  # no "did you mean" for a key longer than any field name
    assert len(problem) < 200
