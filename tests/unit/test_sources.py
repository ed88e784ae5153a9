"""Several sources in one config: validation, the Plan (which source, which rules, which registry and role), the
home and forwarding event patterns, and the loop guard at every source."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.eventbridge_matcher import matches
from workflow.cli import main
from workflow.core.exceptions import InvalidConfig, InvalidRequest, ReplicationLoop
from workflow.models.config import parse_config
from workflow.pipeline.plan import compile_event_pattern, plan
from workflow.pipeline.request import parse_request

HOME = {"account": "111111111111", "region": "us-east-1"}
WEST = {"account": "111111111111", "region": "eu-west-1"}
PARTNER = {"account": "333333333333", "region": "us-west-2"}
DESTINATION = {"account": "222222222222", "regions": ["eu-west-1"]}
DIGEST = "sha256:" + "a" * 64
CONFIG: dict[str, Any] = {
    "sources": [HOME, WEST, PARTNER],
    "rules": [
        {
            "name": "builds",
            "sources": ["111111111111/us-east-1", "111111111111/eu-west-1"],
            "repositories": ["app", "web"],
            "tags": {"include": ["release-*"]},
            "destinations": [DESTINATION],
        },
        {
            "name": "partner",
            "sources": ["333333333333/us-west-2"],
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [{**DESTINATION, "repository": "partner/{repository}"}],
        },
    ],
}


def unrestricted(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule without `sources`: it replicates every source's pushes."""
    return {key: value for key, value in rule.items() if key != "sources"}


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        parse_config(data)
    return caught.value.problems


def event(source: dict[str, str], repository: str, tag: str) -> dict[str, Any]:
    """ECR's push event as the home bus receives it (from its own account and Region, or forwarded)."""
    return {
        "version": "0",
        "id": "e",
        "source": "aws.ecr",
        "detail-type": "ECR Image Action",
        "account": source["account"],
        "region": source["region"],
        "time": "2026-01-15T12:00:00Z",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "action-type": "PUSH",
            "repository-name": repository,
            "image-digest": DIGEST,
            "image-tag": tag,
        },
    }


def test_sources_list_accounts_and_regions_and_the_first_is_home_unless_one_is_marked() -> None:
    # Given three sources, none marked / Then the first is home; the single `source:` is one source, the home
    config = parse_config(CONFIG)
    assert [s.name for s in config.sources] == [
        "111111111111/us-east-1",
        "111111111111/eu-west-1",
        "333333333333/us-west-2",
    ]
    assert config.source.name == "111111111111/us-east-1"
    single = parse_config({"source": HOME, "rules": [unrestricted(CONFIG["rules"][0])]})
    assert [s.name for s in single.sources] == ["111111111111/us-east-1"]
    # And a source marked home is home wherever it is listed
    marked = copy.deepcopy(CONFIG)
    marked["sources"][1]["home"] = True
    assert parse_config(marked).source.name == "111111111111/eu-west-1"
    # And only the source in another account is read through a role there
    assert [parse_config(CONFIG).source_role_arn(s) for s in config.sources] == [
        None,
        None,
        "arn:aws:iam::333333333333:role/ecr-replication-source-access",
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: c.update(source=HOME), "source: give source or sources, not both"),
        (
            lambda c: c["sources"].append(dict(WEST)),
            "sources[3]: 111111111111/eu-west-1 is already sources[1]",
        ),
        (
            lambda c: [s.update(home=True) for s in c["sources"][:2]],
            "sources: 2 sources marked home (sources[0, 1]); the source stack is deployed in one",
        ),
        (
            lambda c: c["rules"][0]["sources"].append("444444444444/us-east-1"),
            "rules[0].sources[2]: '444444444444/us-east-1' is not one of the sources",
        ),
        (
            lambda c: c["rules"][1].update(sources=["111111111111/us-east-1"]),
            "sources[2]: no rule replicates the pushes of 333333333333/us-west-2",
        ),
        (
            lambda c: c["rules"][1].update(sources=["333333333333"]),
            "rules[1].sources: '333333333333' is not a source account/region (e.g. 111111111111/us-east-1)",
        ),
    ],
)
def test_bad_sources_are_refused_saying_what_is_wrong(change: Any, problem: str) -> None:
    data = copy.deepcopy(CONFIG)
    change(data)
    assert any(p.startswith(problem) for p in problems_of(data)), problems_of(data)


@pytest.mark.parametrize(("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
def test_validate_refuses_a_source_in_another_partition_in_one_line_exit_2(
    region: str, partition: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a config whose second source is in aws-cn or aws-us-gov, its home in aws
    When validated Then exit 2 and one line: EventBridge routes no events across partitions."""
    data = copy.deepcopy(CONFIG)
    data["sources"][2] = {"account": "333333333333", "region": region}
    data["rules"][1]["sources"] = [f"333333333333/{region}"]
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump(data))
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert f"sources[2]: 333333333333/{region} is in partition {partition}, the home source " in err
    assert "EventBridge routes no events across partitions" in err


def test_a_home_in_govcloud_cannot_gather_another_regions_events() -> None:
    # Given a home in us-gov-west-1 and a source in us-gov-east-1: GovCloud is no cross-Region destination
    data = {
        "sources": [
            {"account": "111111111111", "region": "us-gov-west-1"},
            {"account": "111111111111", "region": "us-gov-east-1"},
        ],
        "rules": [
            {
                **unrestricted(CONFIG["rules"][0]),
                "destinations": [{"account": "222222222222", "regions": ["us-gov-west-1"]}],
            }
        ],
    }
    assert problems_of(data) == [
        "sources[1]: 111111111111/us-gov-east-1 is in another Region than the home source "
        "111111111111/us-gov-west-1: EventBridge routes no events between Regions of aws-us-gov; deploy an "
        "installation with its home in us-gov-east-1"
    ]


def test_an_event_from_each_source_is_planned_with_that_sources_rules_registry_and_role() -> None:
    config = parse_config(
        {
            **CONFIG,
            "endpoints": [
                {
                    "account": "333333333333",
                    "region": "us-west-2",
                    "registry": "127.0.0.1:5003",
                    "insecure": True,
                }
            ],
        }
    )
    # Given app:release-1 pushed in the home Region and in the partner account (same repository name)
    home = plan(parse_request(event(HOME, "app", "release-1")), config)
    partner = plan(parse_request(event(PARTNER, "app", "release-1")), config)
    # Then each plan names its source, and its targets read from that source's registry
    assert (home.source, partner.source) == ("111111111111/us-east-1", "333333333333/us-west-2")
    assert [(t.repository, t.source, t.source_registry, t.source_role_arn) for t in home.targets] == [
        ("app", "111111111111/us-east-1", "111111111111.dkr.ecr.us-east-1.amazonaws.com", None)
    ]
    assert [(t.repository, t.source, t.source_registry, t.source_role_arn) for t in partner.targets] == [
        (
            "partner/app",
            "333333333333/us-west-2",
            "127.0.0.1:5003",
            "arn:aws:iam::333333333333:role/ecr-replication-source-access",
        )
    ]
    # And a rule that does not name a source does not replicate its pushes, and says so
    skipped = plan(parse_request(event(PARTNER, "web", "release-1")), config)
    assert skipped.targets == []
    assert "rule 'builds': does not replicate 333333333333/us-west-2" in str(skipped.skipped_reason)


def test_an_event_from_a_place_that_is_no_source_is_refused() -> None:
    # Given an event from the partner account in a Region that is not one of its sources
    stray = event({"account": "333333333333", "region": "us-east-1"}, "app", "release-1")
    with pytest.raises(
        InvalidRequest, match="'333333333333'/'us-east-1', which is not one of the config's sources"
    ):
        plan(parse_request(stray), parse_config(CONFIG))


def test_a_manual_run_names_the_source_when_several_select_the_repository() -> None:
    config = parse_config(CONFIG)
    # Given app, which the home, eu-west-1 and partner sources all replicate
    with pytest.raises(
        InvalidRequest, match=r"'app' is replicated from 3 sources .* name the one the image is in"
    ):
        plan(parse_request({"repository": "app", "tag": "release-1"}), config)
    # When the input names the source / Then that source's rules plan it
    named = parse_request(
        {
            "repository": "app",
            "tag": "release-1",
            "source": {"account": "333333333333", "region": "us-west-2"},
        }
    )
    assert [t.repository for t in plan(named, config).targets] == ["partner/app"]
    # And web, which only the home account's sources replicate, still needs one of those two named
    with pytest.raises(InvalidRequest, match="'web' is replicated from 2 sources"):
        plan(parse_request({"repository": "web", "tag": "release-1"}), config)


def test_the_home_rule_filters_every_source_and_each_forwarding_rule_its_own() -> None:
    config = parse_config(CONFIG)
    home = compile_event_pattern(config)
    # Then the home rule matches each source's events by their account and Region
    assert home.pattern["account"] == ["111111111111", "333333333333"]
    assert home.pattern["region"] == ["eu-west-1", "us-east-1", "us-west-2"]
    for source in (HOME, WEST, PARTNER):
        assert matches(home.pattern, event(source, "app", "release-1"))
    # And it says where it accepts more than the rules (rules naming sources; account x Region pairs)
    assert {w.field for w in home.widened} == {"pattern", "account"}
    # And the partner's forwarding rule matches only its own events of its own rule (app, not web)
    partner = compile_event_pattern(config, config.sources[2])
    assert (partner.pattern["account"], partner.pattern["region"]) == (["333333333333"], ["us-west-2"])
    assert matches(partner.pattern, event(PARTNER, "app", "release-1"))
    assert not matches(partner.pattern, event(PARTNER, "web", "release-1"))
    assert not matches(partner.pattern, event(WEST, "app", "release-1"))
    assert partner.exact
    # And a config with one source keeps its pattern without account and Region
    single = parse_config({"source": HOME, "rules": [unrestricted(CONFIG["rules"][0])]})
    assert "account" not in compile_event_pattern(single).pattern


def looping_at_the_partner() -> dict[str, Any]:
    """The home account's builds copied into the partner's own account and Region as mirror/app, which the
    partner's rule (every repository, release-*) would select again."""
    data = copy.deepcopy(CONFIG)
    data["rules"][0]["destinations"].append(
        {"account": "333333333333", "regions": ["us-west-2"], "repository": "mirror/{repository}"}
    )
    data["rules"][1]["repositories"] = ["*"]
    return data


def test_a_destination_in_another_sources_place_that_its_rules_select_again_is_a_loop() -> None:
    assert problems_of(looping_at_the_partner()) == [
        "rules[0].destinations[1]: app -> mirror/app is selected again by rule 'partner' (loop in "
        "333333333333/us-west-2)"
    ]
    # And the same destination is no loop when that source's rules cannot select the copies
    data = looping_at_the_partner()
    data["rules"][1]["repositories"] = ["app"]
    parse_config(data)


def test_the_plan_refuses_a_loop_at_another_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the looping config, past validate (as an old deployment would have it)
    from workflow.models import config_checks

    monkeypatch.setattr(config_checks, "_loops", lambda config: [])
    config = parse_config(looping_at_the_partner())
    # When the home Region's push of app:release-1 is planned / Then ReplicationLoop names the partner's rule
    with pytest.raises(
        ReplicationLoop, match="in 333333333333/us-west-2 is selected again by rule 'partner'"
    ):
        plan(parse_request(event(HOME, "app", "release-1")), config)


def test_the_email_and_the_events_name_the_source_and_a_rerun_reads_it_there() -> None:
    """Given one copied and one failed destination of the partner's image
    When summarized Then the email says where the image came from, the rerun input names that source (the
    Plan needs it when several sources replicate the repository), and each replication event carries it."""
    from workflow.models.payloads import TargetResult
    from workflow.pipeline.announce import batches
    from workflow.pipeline.summary import summarize

    records = [
        TargetResult(
            account="222222222222",
            region=region,
            repository="partner/app",
            tag="release-1",
            status=status,
            digest=DIGEST,
            error="RegistryAuthError" if status == "failed" else None,
            source="333333333333/us-west-2",
        )
        for region, status in (("eu-west-1", "copied"), ("us-west-2", "failed"))
    ]
    summary = summarize(records, repository="app", tag="release-1")
    assert summary.source == "333333333333/us-west-2"
    assert summary.message.startswith("ECR replication of app:release-1 from 333333333333/us-west-2: PARTIAL")
    assert '"source": {"account": "333333333333", "region": "us-west-2"}' in summary.message
    assert [json.loads(entry["Detail"])["source"] for entry in batches(summary)[0]] == [
        "333333333333/us-west-2"
    ] * 2


def test_plan_on_the_command_line_takes_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the three-source config in a file
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    base = ["plan", str(path), "--repository", "app", "--tag", "release-1"]
    # When planned without a source / Then bad input (exit 2), asking which
    assert main(base) == 2
    assert "'app' is replicated from 3 sources" in capsys.readouterr().err
    # When the partner's source is named / Then its rule's destination, the targets naming it
    assert main([*base, "--source", "333333333333/us-west-2", "--json"]) == 0
    (target,) = json.loads(capsys.readouterr().out)["targets"]
    assert (target["repository"], target["source"]) == ("partner/app", "333333333333/us-west-2")
    assert main([*base, "--source", "333333333333/us-west-2"]) == 0
    assert (
        "app:release-1 from 333333333333/us-west-2 replicates to 1 destination(s)" in capsys.readouterr().out
    )


def test_pattern_shows_a_sources_forwarding_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    # When asked for the partner's forwarding pattern / Then its account, Region and own rule's filters
    assert main(["pattern", str(path), "--source", "333333333333/us-west-2", "--json"]) == 0
    pattern = json.loads(capsys.readouterr().out)["pattern"]
    assert pattern == compile_event_pattern(parse_config(CONFIG), parse_config(CONFIG).sources[2]).pattern
    assert (pattern["account"], pattern["detail"]["repository-name"]) == (["333333333333"], ["app"])
    # And a source that is not configured is bad input
    assert main(["pattern", str(path), "--source", "333333333333/us-east-1"]) == 2
    assert "is not one of the sources" in capsys.readouterr().err


def test_a_manual_input_names_its_source_and_a_bad_one_is_refused() -> None:
    from workflow.ops.executions import manual_input

    # Given `ecr-replicate start --source 333333333333/us-west-2` / Then the input carries it, as the Plan reads it
    payload = manual_input("app", "release-1", source={"account": "333333333333", "region": "us-west-2"})
    assert payload["source"] == {"account": "333333333333", "region": "us-west-2"}
    assert plan(parse_request(payload), parse_config(CONFIG)).source == "333333333333/us-west-2"
    # And a malformed source is bad input, named
    with pytest.raises(InvalidRequest, match="source: '3333' is not a 12-digit AWS account id"):
        parse_request(
            {"repository": "app", "tag": "release-1", "source": {"account": "3333", "region": "us-west-2"}}
        )
    with pytest.raises(InvalidRequest, match="source: must be an object with exactly account and region"):
        parse_request({"repository": "app", "tag": "release-1", "source": "333333333333/us-west-2"})
