"""An organization in moto for the fleet tests: a root, OU `platform` with a nested `teams`, OU `sandbox`.

moto's Organizations is kinder than AWS: any caller reads the organization (AWS needs the management account's
delegation policy, which docs/deploy.md gives and tests/iam checks the recorded calls against), `ListChildren`
answers in one page (AWS pages: tests/unit/test_organizations.py pages it with a stub), and `CloseAccount` leaves
an account SUSPENDED at once (AWS passes PENDING_CLOSURE, then CLOSED): `set_state` puts any State.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.organizations.models import organizations_backends

MANAGEMENT = (
    DEFAULT_ACCOUNT_ID  # moto answers the tests' credentials as this account: it creates the organization
)
REGIONS = ["eu-west-1", "us-west-2"]


@dataclass
class Organization:
    """The ids of the organization moto holds."""

    client: Any
    root: str = ""
    units: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)

    def unit(self, name: str, parent: str | None = None) -> str:
        """A new OU under `parent` (an OU name, or the root)."""
        parent_id = self.units[parent] if parent else self.root
        unit = self.client.create_organizational_unit(ParentId=parent_id, Name=name)["OrganizationalUnit"][
            "Id"
        ]
        self.units[name] = unit
        return str(unit)

    def account(self, name: str, unit: str | None = None) -> str:
        """A new account, moved into the OU named `unit` (else left under the root)."""
        status = self.client.create_account(AccountName=name, Email=f"{name}@example.com")[
            "CreateAccountStatus"
        ]
        account = str(status["AccountId"])
        self.accounts[name] = account
        if unit:
            self.client.move_account(
                AccountId=account, SourceParentId=self.root, DestinationParentId=self.units[unit]
            )
        return account

    def set_state(self, name: str, state: str) -> None:
        """Put an account in `state` (and the older Status field alongside, as Organizations reports both)."""
        backend = organizations_backends[MANAGEMENT]["aws"]
        account = backend.get_account_by_id(self.accounts[name])
        account.state = state
        account.status = "SUSPENDED" if state == "CLOSED" else state


def organization(client: Any) -> Organization:
    """root, platform (a1), platform/teams (a2, a3), sandbox (a4); a5 under the root."""
    client.create_organization(FeatureSet="ALL")
    org = Organization(client, root=client.list_roots()["Roots"][0]["Id"])
    org.unit("platform")
    org.unit("teams", "platform")
    org.unit("sandbox")
    org.account("a1", "platform")
    org.account("a2", "teams")
    org.account("a3", "teams")
    org.account("a4", "sandbox")
    org.account("a5")
    return org


def fleet_config(*destinations: dict[str, Any], source: str = "111111111111") -> dict[str, Any]:
    """A config whose one rule (`production`: app, release-*) names `destinations`."""
    return {
        "source": {"account": source, "region": "us-east-1"},
        "rules": [
            {
                "name": "production",
                "repositories": ["app"],
                "tags": {"include": ["release-*"]},
                "destinations": list(destinations),
            }
        ],
    }


def deploy_fleet_role(account: str, role_name: str = "ecr-replication-fleet") -> None:
    """What the fleet StackSet does in an account that joins its OU: create the role (its policy is the template's,
    checked in tests/infrastructure; moto checks no policy)."""
    iam_backends[account]["aws"].create_role(
        role_name=role_name,
        assume_role_policy_document="{}",
        path="/",
        permissions_boundary=None,
        description="the fleet role",
        tags=[],
        max_session_duration="3600",
    )
