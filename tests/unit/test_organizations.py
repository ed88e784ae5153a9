"""Organization destinations resolved through AWS Organizations (moto, and stubs where moto is kinder)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.stub import Stubber

from lambdas import plan as plan_function
from tests.unit.conftest import FakeLambdaContext
from tests.unit.fleet import MANAGEMENT, REGIONS, Organization, fleet_config, organization
from workflow.core.exceptions import OrganizationLookupFailed, TooManyDestinations
from workflow.models import config_checks
from workflow.models.config import FLEET_ROLE_NAME, parse_config
from workflow.pipeline import organizations as organizations_module
from workflow.pipeline.organizations import (
    SKIPPED_SHOWN,
    OrganizationDirectory,
    Resolution,
    resolve,
)
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_manual_input


@pytest.fixture
def org(aws: None) -> Organization:
    """The organization of tests/unit/fleet.py in moto."""
    return organization(boto3.client("organizations", region_name="us-east-1"))


def calls_of(client: Any) -> list[str]:
    """The operations `client` sends from now on, in order."""
    sent: list[str] = []
    client.meta.events.register("before-call.organizations", lambda model, **_: sent.append(model.name))
    return sent


def destinations(resolution: Resolution) -> list[tuple[str, str, str]]:
    """(account, Region, role name) of every destination of the resolved config, sorted."""
    return sorted(
        (d.account, region, d.role_name)
        for rule in resolution.config.rules
        for d in rule.account_destinations
        for region in d.regions
    )


def test_an_organizational_unit_resolves_to_its_active_accounts_nested_units_included(
    org: Organization,
) -> None:
    # Given OU platform (a1, and nested teams: a2 and a3), a3 suspended, and a4/a5 outside it
    org.set_state("a3", "SUSPENDED")
    config = parse_config(fleet_config({"organizational_units": [org.units["platform"]], "regions": REGIONS}))
    # When resolved
    resolution = resolve(config, OrganizationDirectory(org.client))
    # Then a1 and a2 receive, in both Regions, through the fleet role; a3 is skipped and said so
    a1, a2, a3 = (org.accounts[n] for n in ("a1", "a2", "a3"))
    assert destinations(resolution) == sorted(
        (account, region, FLEET_ROLE_NAME) for account in (a1, a2) for region in REGIONS
    )
    assert [s.line() for s in resolution.skipped] == [
        f"{a3}: SUSPENDED: the account is suspended (rule production)"
    ]
    assert [(r.rule, sorted(r.accounts)) for r in resolution.resolved] == [("production", sorted([a1, a2]))]


@pytest.mark.parametrize(
    ("state", "reason"),
    [("PENDING_CLOSURE", "closing"), ("CLOSED", "closed"), ("PENDING_ACTIVATION", "not active yet")],
)
def test_an_account_that_is_not_active_is_skipped_by_its_state(
    org: Organization, state: str, reason: str
) -> None:
    # Given a2 in a state moto's CloseAccount never produces (AWS: PENDING_CLOSURE, then CLOSED)
    org.set_state("a2", state)
    config = parse_config(fleet_config({"organizational_units": [org.units["teams"]], "regions": REGIONS}))
    # When resolved / Then only a3 receives, and a2's state is the reason
    resolution = resolve(config, OrganizationDirectory(org.client))
    assert {d[0] for d in destinations(resolution)} == {org.accounts["a3"]}
    assert [s.reason for s in resolution.skipped] == [f"{state}: the account is {reason}"]


def test_the_whole_organization_skips_the_management_account_and_the_excluded(org: Organization) -> None:
    # Given the whole organization less a4
    config = parse_config(
        fleet_config(
            {"organization": True, "exclude_accounts": [org.accounts["a4"]], "regions": ["eu-west-1"]}
        )
    )
    # When resolved
    resolution = resolve(config, OrganizationDirectory(org.client))
    # Then every member account but a4 receives; the management account and a4 are skipped, with why
    members = {org.accounts[n] for n in ("a1", "a2", "a3", "a5")}
    assert {d[0] for d in destinations(resolution)} == members
    assert {s.account: s.reason for s in resolution.skipped} == {
        org.accounts["a4"]: "excluded (exclude_accounts)",
        MANAGEMENT: "the management account: service-managed StackSets do not deploy the fleet role there "
        "(name it with `account:` to replicate to it)",
    }


def test_an_account_named_explicitly_too_is_planned_once_with_its_own_role(org: Organization) -> None:
    # Given a1 named explicitly in eu-west-1, and its OU in both Regions
    a1 = org.accounts["a1"]
    config = parse_config(
        fleet_config(
            {"account": a1, "regions": ["eu-west-1"]},
            {"organizational_units": [org.units["platform"]], "regions": REGIONS},
        )
    )
    # When an image is planned on the resolved config
    resolution = resolve(config, OrganizationDirectory(org.client))
    targets = plan(parse_manual_input({"repository": "app", "tag": "release-1"}), resolution.config).targets
    # Then a1 is one target per Region: eu-west-1 through its own role, us-west-2 through the fleet role
    roles = sorted((t.account, t.region, t.role_arn.rsplit("/", 1)[1]) for t in targets if t.account == a1)
    assert roles == [(a1, "eu-west-1", "ecr-replication-target"), (a1, "us-west-2", FLEET_ROLE_NAME)]
    assert len(targets) == len({(t.account, t.region) for t in targets}) == 6  # a1, a2, a3 x 2 Regions


def test_accounts_past_the_first_page_are_all_resolved(org: Organization) -> None:
    # Given 25 accounts in a new OU (ListAccountsForParent answers at most 20 per page)
    org.unit("big")
    many = {org.account(f"big{n}", "big") for n in range(25)}
    sent = calls_of(org.client)
    # When resolved
    config = parse_config(
        fleet_config({"organizational_units": [org.units["big"]], "regions": ["eu-west-1"]})
    )
    resolution = resolve(config, OrganizationDirectory(org.client))
    # Then all 25 receive, read in two pages
    assert {d[0] for d in destinations(resolution)} == many
    assert sent.count("ListAccountsForParent") == 2


def stubbed_client(max_attempts: int = 1) -> tuple[Any, Stubber]:
    """An Organizations client (no retries unless asked) with a stubber, and no network."""
    client = boto3.client(
        "organizations",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
    )
    return client, Stubber(client)


def no_accounts(stubber: Stubber, parent: str) -> None:
    stubber.add_response("list_accounts_for_parent", {"Accounts": []}, {"ParentId": parent})


def test_child_units_on_a_second_page_are_walked() -> None:
    # Given ListChildren answering ou-root's children in two pages (moto answers one page only)
    client, stubber = stubbed_client()
    unit, first, second = "ou-ab12-00000000", "ou-ab12-11111111", "ou-ab12-22222222"
    children = {"ParentId": unit, "ChildType": "ORGANIZATIONAL_UNIT"}
    no_accounts(stubber, unit)
    page = {"Children": [{"Id": first, "Type": "ORGANIZATIONAL_UNIT"}], "NextToken": "more"}
    stubber.add_response("list_children", page, children)
    page = {"Children": [{"Id": second, "Type": "ORGANIZATIONAL_UNIT"}]}
    stubber.add_response("list_children", page, {**children, "NextToken": "more"})
    for child, account in ((first, "333333333333"), (second, "444444444444")):
        answer = {"Accounts": [{"Id": account, "State": "ACTIVE", "Status": "ACTIVE"}]}
        stubber.add_response("list_accounts_for_parent", answer, {"ParentId": child})
        stubber.add_response(
            "list_children", {"Children": []}, {"ParentId": child, "ChildType": "ORGANIZATIONAL_UNIT"}
        )
    # When the OU's accounts are read
    with stubber:
        members = OrganizationDirectory(client).accounts_under(unit)
    # Then the OU on the second page was walked too
    assert [m.account for m in members] == ["333333333333", "444444444444"]
    stubber.assert_no_pending_responses()


def test_answers_are_cached_for_the_ttl_then_read_again(org: Organization) -> None:
    # Given a directory whose clock the test moves, and OU teams read once
    now = [0.0]
    directory = OrganizationDirectory(org.client, ttl=300, clock=lambda: now[0])
    config = parse_config(
        fleet_config({"organizational_units": [org.units["teams"]], "regions": ["eu-west-1"]})
    )
    before = {d[0] for d in destinations(resolve(config, directory))}
    # When an account joins the OU, and runs plan within the TTL and after it
    joined = org.account("joined", "teams")
    sent = calls_of(org.client)
    now[0] = 299.0
    within = {d[0] for d in destinations(resolve(config, directory))}
    calls_within = list(sent)
    now[0] = 301.0
    after = {d[0] for d in destinations(resolve(config, directory))}
    # Then within the TTL Organizations is not asked and the account is not seen yet; after it, it is
    assert calls_within == []
    assert within == before == {org.accounts["a2"], org.accounts["a3"]}
    assert after == before | {joined}
    assert "ListAccountsForParent" in sent


def test_the_cache_holds_at_most_its_size(org: Organization) -> None:
    # Given a directory holding one answer, and two OUs read in turn
    directory = OrganizationDirectory(org.client, max_entries=1)
    directory.accounts_under(org.units["sandbox"])
    directory.accounts_under(org.units["teams"])
    sent = calls_of(org.client)
    # When the first OU is read again / Then it was evicted and is asked again
    directory.accounts_under(org.units["sandbox"])
    assert sent.count("ListAccountsForParent") == 1


def test_an_organizational_unit_that_does_not_exist_is_organization_lookup_failed(org: Organization) -> None:
    config = parse_config(
        fleet_config({"organizational_units": ["ou-zzzz-zzzzzzzz"], "regions": ["eu-west-1"]})
    )
    with pytest.raises(OrganizationLookupFailed) as raised:
        resolve(config, OrganizationDirectory(org.client))
    assert str(raised.value) == (
        "organizations:ListAccountsForParent on ou-zzzz-zzzzzzzz: ParentNotFoundException: You specified parent "
        "that doesn't exist. (no such organizational unit in this organization)"
    )


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (
            "AccessDeniedException",
            "the management account has not delegated this read to the source account, or this role may not "
            "call it: apply the delegation policy (docs/deploy.md, 'Destinations by organization')",
        ),
        ("TooManyRequestsException", "Organizations throttled the source account past 8 attempts"),
    ],
)
def test_a_refused_read_names_the_call_and_what_to_do(code: str, hint: str) -> None:
    # Given Organizations refusing the source account (no delegation policy, or throttling past the retries)
    client, stubber = stubbed_client()
    stubber.add_client_error("describe_organization", code, "refused")
    config = parse_config(fleet_config({"organization": True, "regions": ["eu-west-1"]}))
    # When resolved / Then OrganizationLookupFailed names the call, the code and the remedy
    with stubber, pytest.raises(OrganizationLookupFailed) as raised:
        resolve(config, OrganizationDirectory(client))
    assert (
        str(raised.value) == f"organizations:DescribeOrganization on organization: {code}: refused ({hint})"
    )


class _Raw:
    """An HTTP body botocore reads."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_a_throttled_read_is_retried_within_its_bound(org: Organization) -> None:
    # Given Organizations throttling the first DescribeOrganization (as its JSON protocol answers it)
    client = boto3.client(
        "organizations",
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )
    throttled: list[str] = []

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        if throttled:
            return None
        throttled.append(request.url)
        body = json.dumps({"__type": "TooManyRequestsException", "Message": "slow down"}).encode()
        return AWSResponse(request.url, 400, {"x-amzn-RequestId": "throttled"}, _Raw(body))

    client.meta.events.register("before-send.organizations.DescribeOrganization", throttle)
    # When the management account is read / Then botocore retried it, and the retry answered
    assert OrganizationDirectory(client).management_account() == MANAGEMENT
    assert len(throttled) == 1


def test_more_accounts_than_one_execution_carries_is_too_many_destinations(
    org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an OU of 41 accounts named in 3 Regions (123 destinations), with a bound of 120 (the config's,
    # lowered here so that moto need not create 700 accounts)
    monkeypatch.setattr(organizations_module, "MAX_DESTINATIONS", 120)
    monkeypatch.setattr(config_checks, "MAX_DESTINATIONS", 120)
    org.unit("huge")
    for n in range(41):
        org.account(f"huge{n}", "huge")
    regions = ["eu-west-1", "us-west-2", "ap-southeast-2"]
    config = parse_config(fleet_config({"organizational_units": [org.units["huge"]], "regions": regions}))
    # When resolved / Then the bound is named, not a state over 256 KiB later
    with pytest.raises(TooManyDestinations) as raised:
        resolve(config, OrganizationDirectory(org.client))
    assert str(raised.value) == (
        "rules: 123 destinations (account, Region, repository) in all; at most 120 per image (the largest "
        "fan-out measured: README, 'A fleet of destinations'), once the organization destinations are resolved"
    )


def test_a_config_without_organization_destinations_reads_nothing() -> None:
    # Given named accounts only / When resolved without any directory / Then the config is unchanged
    config = parse_config(fleet_config({"accounts": ["222222222222", "333333333333"], "regions": REGIONS}))
    assert resolve(config, None).config is config


def test_the_plan_lists_at_most_twenty_skipped_accounts_then_how_many_more(org: Organization) -> None:
    # Given 25 suspended accounts in an OU beside an active one
    org.unit("closing")
    org.account("alive", "closing")
    for n in range(25):
        org.account(f"gone{n}", "closing")
        org.set_state(f"gone{n}", "SUSPENDED")
    config = parse_config(
        fleet_config({"organizational_units": [org.units["closing"]], "regions": ["eu-west-1"]})
    )
    resolution = resolve(config, OrganizationDirectory(org.client))
    # When an image is planned
    noted = resolution.noted(
        plan(parse_manual_input({"repository": "app", "tag": "release-1"}), resolution.config)
    )
    # Then the plan says which accounts were skipped and why, bounded
    assert len(noted.skipped_accounts) == SKIPPED_SHOWN + 1
    assert noted.skipped_accounts[0].endswith(": SUSPENDED: the account is suspended (rule production)")
    assert noted.skipped_accounts[-1] == "and 5 more accounts skipped"


@pytest.fixture
def clear_directory() -> Iterator[None]:
    """The Plan function's per-container directory, empty before and after the test."""
    from lambdas import observability

    observability._directory.cache_clear()
    yield
    observability._directory.cache_clear()


def test_the_plan_function_replicates_to_the_accounts_of_an_organizational_unit_and_says_which_it_skipped(
    org: Organization,
    clear_directory: None,
    config_file: Callable[..., Path],
    lambda_context: FakeLambdaContext,
) -> None:
    # Given the packaged config naming OU teams (a2, a3 suspended) and the whole organization in us-west-2
    org.set_state("a3", "SUSPENDED")
    config_file(
        fleet_config(
            {"organizational_units": [org.units["teams"]], "regions": ["eu-west-1"]},
            {"organization": True, "exclude_accounts": [org.accounts["a4"]], "regions": ["us-west-2"]},
        )
    )
    # When the Plan function plans a release
    result = plan_function.handler(
        {"execution": "push-1", "input": {"repository": "app", "tag": "release-1"}}, lambda_context
    )
    # Then a2 receives in eu-west-1, every active member but a4 in us-west-2, through the fleet role
    a1, a2, a5 = (org.accounts[n] for n in ("a1", "a2", "a5"))
    assert sorted((t["account"], t["region"]) for t in result["targets"]) == sorted(
        [(a2, "eu-west-1"), (a1, "us-west-2"), (a2, "us-west-2"), (a5, "us-west-2")]
    )
    assert {t["role_arn"] for t in result["targets"]} == {
        f"arn:aws:iam::{t['account']}:role/{FLEET_ROLE_NAME}" for t in result["targets"]
    }
    # And the plan says which accounts were skipped, and why
    a3, a4 = org.accounts["a3"], org.accounts["a4"]
    assert sorted(result["skipped_accounts"]) == sorted(
        [
            f"{a3}: SUSPENDED: the account is suspended (rule production)",
            f"{a4}: excluded (exclude_accounts) (rule production)",
            f"{MANAGEMENT}: the management account: service-managed StackSets do not deploy the fleet role there "
            "(name it with `account:` to replicate to it) (rule production)",
        ]
    )


def test_the_plan_function_fails_by_name_when_organizations_cannot_be_read(
    aws: None,
    clear_directory: None,
    config_file: Callable[..., Path],
    lambda_context: FakeLambdaContext,
) -> None:
    # Given an organization destination and a source account in no organization
    config_file(fleet_config({"organization": True, "regions": ["eu-west-1"]}))
    # When the Plan function runs / Then OrganizationLookupFailed (the execution's error name) says why
    with pytest.raises(OrganizationLookupFailed, match="AWSOrganizationsNotInUseException"):
        plan_function.handler(
            {"execution": "push-1", "input": {"repository": "app", "tag": "release-1"}}, lambda_context
        )
