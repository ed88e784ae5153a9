"""`ecr-replicate validate | plan` with destinations by accounts, organizational units and the organization."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
import yaml

from tests.unit.fleet import MANAGEMENT, Organization, fleet_config, organization
from tests.unit.test_schema import Yaml12Loader
from workflow.cli import main
from workflow.models.config import MAX_DESTINATIONS

ROOT = Path(__file__).parents[2]
FLEET_EXAMPLE = ROOT / "examples" / "fleet.yaml"
THREE_REGIONS = ["eu-west-1", "us-west-2", "ap-southeast-2"]


def load_yaml12(text: str) -> Any:
    """YAML as editors read it (`on` stays a string)."""
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def accounts(count: int) -> list[str]:
    return [f"{200000000000 + n:012d}" for n in range(count)]


@pytest.mark.parametrize(
    "destinations",
    [
        [{"accounts": accounts(40), "regions": THREE_REGIONS}],
        [{"account": account, "regions": THREE_REGIONS} for account in accounts(40)],
    ],
    ids=["accounts-list", "account-entries"],
)
def test_validate_accepts_40_accounts_in_3_regions(
    destinations: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 40 accounts x 3 Regions (120 destinations), as one list or 40 entries / When validated / Then valid
    assert main(["validate", write(tmp_path, fleet_config(*destinations))]) == 0
    assert "valid: 1 rule(s) (production), 120 destination(s) in 40 account(s)" in capsys.readouterr().out


def test_validate_accepts_2000_destinations_and_refuses_one_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 2,000 destinations (1,000 accounts x 2 Regions): the Distributed Map's fan-out carries them
    config = fleet_config({"accounts": accounts(1000), "regions": ["eu-west-1", "us-west-2"]})
    # When validated / Then valid
    assert main(["validate", write(tmp_path, config)]) == 0
    assert "2000 destination(s) in 1000 account(s)" in capsys.readouterr().out
    # And one destination more is refused with the bound and where it comes from
    more = fleet_config(
        {"accounts": accounts(1000), "regions": ["eu-west-1", "us-west-2"]},
        {"account": "999999999999", "regions": ["eu-west-1"]},
    )
    assert main(["validate", write(tmp_path, more)]) == 2
    assert (
        f"rules: 2001 destinations (account, Region, repository) in all; at most {MAX_DESTINATIONS} per image"
    ) in capsys.readouterr().err


def test_validate_summarizes_the_organization_destinations_of_the_fleet_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the fleet example (an OU, named accounts, the whole organization) / When validated offline
    assert main(["validate", str(FLEET_EXAMPLE), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # Then the named accounts are listed, and the organization destinations are said to resolve when a run plans
    assert summary["destinations"] == [
        {"account": "222222222222", "region": "eu-west-1", "repository": "{repository}"},
        {"account": "333333333333", "region": "eu-west-1", "repository": "{repository}"},
    ]
    assert summary["organization_destinations"] == [
        {
            "rule": "production",
            "destination": "organizational unit(s) ou-ab12-workload (nested OUs included)",
            "exclude_accounts": ["444444444444"],
            "regions": THREE_REGIONS,
        },
        {
            "rule": "base-images",
            "destination": "the organization",
            "exclude_accounts": [],
            "regions": ["us-west-2"],
        },
    ]


@pytest.fixture
def org(aws: None) -> Organization:
    return organization(boto3.client("organizations", region_name="us-east-1"))


def example_for(org: Organization, tmp_path: Path) -> str:
    """The fleet example with its OU and excluded account replaced by moto's `platform` OU and a3."""
    text = FLEET_EXAMPLE.read_text().replace("ou-ab12-workload", org.units["platform"])
    path = tmp_path / "fleet.yaml"
    path.write_text(text.replace("444444444444", org.accounts["a3"]), encoding="utf-8")
    return str(path)


def test_plan_lists_the_accounts_each_organization_destination_resolved_to(
    org: Organization, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the fleet example pointed at moto's organization, a2 suspended
    org.set_state("a2", "SUSPENDED")
    config = example_for(org, tmp_path)
    # When a release is planned
    assert main(["plan", config, "--repository", "app", "--tag", "release-1"]) == 0
    out = capsys.readouterr().out.splitlines()
    # Then the OU resolved to a1 (a2 suspended, a3 excluded), the organization to every active member
    a1, a2, a3, a4, a5 = (org.accounts[n] for n in ("a1", "a2", "a3", "a4", "a5"))
    assert out[0] == (
        f"rule production: organizational unit(s) {org.units['platform']} (nested OUs included): 1 account(s): {a1}"
    )
    members = sorted([a1, a3, a4, a5])
    assert out[1] == f"rule base-images: the organization: 4 account(s): {', '.join(members)}"
    assert sorted(out[2:6]) == sorted(
        [
            f"  skipped {a2}: SUSPENDED: the account is suspended (rule production)",
            f"  skipped {a3}: excluded (exclude_accounts) (rule production)",
            f"  skipped {MANAGEMENT}: the management account: service-managed StackSets do not deploy the fleet "
            "role there (name it with `account:` to replicate to it) (rule base-images)",
            f"  skipped {a2}: SUSPENDED: the account is suspended (rule base-images)",
        ]
    )
    # And app:release-1 goes to a1 in three Regions and the two named accounts
    assert out[6] == "app:release-1 replicates to 5 destination(s):"
    assert sorted(line.split()[0] for line in out[7:]) == sorted(
        [
            f"{a1}/eu-west-1",
            f"{a1}/us-west-2",
            f"{a1}/ap-southeast-2",
            "222222222222/eu-west-1",
            "333333333333/eu-west-1",
        ]
    )


def test_plan_json_carries_the_resolution(
    org: Organization, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the fleet example pointed at moto's organization / When a base image is planned as JSON
    assert (
        main(["plan", example_for(org, tmp_path), "--repository", "base/python", "--tag", "v3", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    # Then the organization destination's accounts are listed, and each is a target in us-west-2
    members = sorted(org.accounts[n] for n in ("a1", "a2", "a3", "a4", "a5"))
    assert result["organization"][1] == {
        "rule": "base-images",
        "destination": "the organization",
        "accounts": members,
    }
    assert sorted(t["account"] for t in result["targets"]) == members
    assert {t["repository"] for t in result["targets"]} == {"mirror/base/python"}


def test_plan_without_organizations_access_fails_by_name(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the fleet example and credentials of an account in no organization
    # When planned / Then one line names the error and the call, exit 1
    assert main(["plan", str(FLEET_EXAMPLE), "--repository", "app", "--tag", "release-1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "failed: OrganizationLookupFailed: organizations:DescribeOrganization on organization: "
    )
    assert err.count("\n") == 1


def test_the_committed_schema_accepts_the_fleet_example_and_refuses_an_unknown_selector() -> None:
    # Given the committed JSON Schema and the fleet example, as an editor reads them
    schema = json.loads((ROOT / "schema" / "replication.schema.json").read_text())
    config = load_yaml12(FLEET_EXAMPLE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    # Then the example is valid, and a destination naming an unknown selector is not
    assert list(validator.iter_errors(config)) == []
    config["rules"][0]["destinations"][0]["organisational_units"] = ["ou-ab12-workload"]
    assert list(validator.iter_errors(config)) != []
