"""The config's destinations by accounts, organizational units and the organization: what is accepted, and
each refusal with its path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.fleet import fleet_config
from workflow.core.exceptions import InvalidConfig
from workflow.models.config import DEFAULT_ROLE_NAME, FLEET_ROLE_NAME, parse_config

UNIT = "ou-ab12-workload"


def problems_of(*destinations: dict[str, Any], **rule: Any) -> list[str]:
    config = fleet_config(*destinations)
    config["rules"][0].update(rule)
    with pytest.raises(InvalidConfig) as caught:
        parse_config(config)
    return caught.value.problems


def test_each_kind_of_destination_is_read_with_its_role() -> None:
    # Given a list of accounts, an OU less one account, and the organization
    config = parse_config(
        fleet_config(
            {"accounts": ["222222222222", "333333333333"], "regions": ["eu-west-1"]},
            {"organizational_units": [UNIT], "exclude_accounts": ["444444444444"], "regions": ["eu-west-1"]},
            {"organization": True, "regions": ["us-west-2"]},
        )
    )
    rule = config.rules[0]
    # Then the accounts are named destinations through the target role, the others resolve later, fleet role
    assert [(d.account, d.role_name) for d in rule.account_destinations] == [
        ("222222222222", DEFAULT_ROLE_NAME),
        ("333333333333", DEFAULT_ROLE_NAME),
    ]
    assert [(d.selector(), d.role) for d in rule.organization_destinations] == [
        (f"organizational unit(s) {UNIT} (nested OUs included)", FLEET_ROLE_NAME),
        ("the organization", FLEET_ROLE_NAME),
    ]


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        (
            {"account": "222222222222", "accounts": ["333333333333"], "regions": ["eu-west-1"]},
            "rules[0].destinations[0]: a destination names exactly one of account, accounts, organizational_units, "
            "organization (here: account, accounts)",
        ),
        (
            {"regions": ["eu-west-1"]},
            "rules[0].destinations[0]: a destination names exactly one of account, accounts, organizational_units, "
            "organization (here: none)",
        ),
        (
            {"organization": True, "organizational_units": [UNIT], "regions": ["eu-west-1"]},
            "rules[0].destinations[0]: a destination names exactly one of account, accounts, organizational_units, "
            "organization (here: organizational_units, organization)",
        ),
        (
            {"accounts": ["222222222222"], "exclude_accounts": ["333333333333"], "regions": ["eu-west-1"]},
            "rules[0].destinations[0]: exclude_accounts applies to organizational_units and organization, not to "
            "accounts",
        ),
        (
            {"organizational_units": ["ou-x"], "regions": ["eu-west-1"]},
            "rules[0].destinations[0].organizational_units: not an organizational unit id "
            "(ou-<4-32 of a-z0-9>-<8-32 of a-z0-9>): 'ou-x'",
        ),
        (
            {"accounts": ["222222222222", "222222222222"], "regions": ["eu-west-1"]},
            "rules[0].destinations[0].accounts: 222222222222 listed twice",
        ),
        (
            {"organization": True, "exclude_accounts": ["12"], "regions": ["eu-west-1"]},
            "rules[0].destinations[0].exclude_accounts: '12' is not a 12-digit AWS account id",
        ),
        (
            {"organizational_units": [UNIT], "regions": ["cn-north-1"]},
            "rules[0].destinations[0].regions: cn-north-1 is not in the source's partition (aws): organization "
            "destinations are reached by the source's roles, which cannot cross partitions",
        ),
    ],
    ids=[
        "account-and-accounts",
        "no-selector",
        "two-selectors",
        "exclude-with-accounts",
        "bad-ou",
        "twice",
        "bad-exclude",
        "other-partition",
    ],
)
def test_a_destination_that_names_its_accounts_wrongly_is_refused_with_its_path(
    destination: dict[str, Any], problem: str
) -> None:
    assert problems_of(destination) == [problem]


def test_organization_destinations_share_one_fleet_role() -> None:
    # Given two organization destinations with different role names
    problems = problems_of(
        {"organizational_units": [UNIT], "regions": ["eu-west-1"]},
        {"organization": True, "regions": ["us-west-2"], "role_name": "other"},
    )
    # Then the second is refused: one StackSet deploys one role
    assert problems == [
        "rules[0].destinations[1]: role_name/external_id differ from rules[0].destinations[0]'s; the fleet "
        "StackSet deploys one role to every organization destination, so they share one name and ExternalId"
    ]


def test_a_customer_managed_key_is_refused_for_organization_destinations() -> None:
    key = "arn:aws:kms:eu-west-1:222222222222:key/11111111-2222-3333-4444-555555555555"
    problems = problems_of(
        {"organizational_units": [UNIT], "regions": ["eu-west-1"]},
        create_repository={"encryption": "KMS", "kms_key": key},
    )
    assert problems == [
        "rules[0].create_repository.kms_key: a customer-managed key is one account's, and organization "
        "destinations are every account of an OU; use encryption KMS without kms_key (ECR's AWS-managed key) "
        "or AES256"
    ]


def test_named_accounts_in_a_list_are_checked_like_single_ones() -> None:
    # Given the same account in a list and alone, in the same Region / Then it is a duplicate, named by path
    assert problems_of(
        {"account": "222222222222", "regions": ["eu-west-1"]},
        {"accounts": ["333333333333", "222222222222"], "regions": ["eu-west-1"]},
    ) == [
        "rules[0].destinations[1]: duplicate destination 222222222222/eu-west-1 (already in destinations[0])"
    ]
