"""Organization destinations at synth: the fleet StackSet, the plain template of the fleet role, what the role
allows, and the Organizations reads granted to exactly the roles that resolve them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks

from infra import naming
from infra.app import build_app
from infra.settings import REPOSITORY_ROOT, SettingsError, settings_from_context
from infra.stacks.fleet_role import fleet_role
from tests.iam.simulate import Request, evaluate
from tests.iam.templates import Stack
from tests.infrastructure.conftest import Synthesized, resources
from tests.infrastructure.test_compliance import ACCEPTED_WARNINGS, cfn_lint

pytestmark = pytest.mark.infrastructure

FLEET = REPOSITORY_ROOT / "examples" / "fleet.yaml"
ROOT_ID = "r-ab12"
SOURCE_ROLES = [
    "arn:aws:iam::111111111111:role/ecr-replication-copy-us-east-1",
    "arn:aws:iam::111111111111:role/ecr-replication-precheck-us-east-1",
    "arn:aws:iam::111111111111:role/ecr-replication-reconcile-us-east-1",
]
ORGANIZATION_ACTIONS = [
    "organizations:DescribeOrganization",
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListChildren",
]


@pytest.fixture(scope="session")
def fleet_synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """examples/fleet.yaml (an OU, named accounts, the whole organization) synthesized with cdk-nag enforcing."""
    outdir = tmp_path_factory.mktemp("fleet.cdk.out")
    context = {"config": str(FLEET), "copy_compute": "lambda", "organization_root_id": ROOT_ID}
    app = cdk.App(outdir=str(outdir), context=context)
    settings = settings_from_context(app.node.try_get_context)
    source, destinations = build_app(app, settings)
    app.synth()
    return Synthesized(app, settings, source, destinations, outdir, Path())


def stack_set(template: dict[str, Any]) -> dict[str, Any]:
    (resource,) = resources(template, "AWS::CloudFormation::StackSet").values()
    return dict(resource["Properties"])


def plain(synthesized: Synthesized) -> dict[str, Any]:
    return dict(json.loads((synthesized.outdir / naming.FLEET_TEMPLATE_FILE).read_text()))


def test_synth_produces_a_service_managed_stack_set_deploying_to_the_organization_with_automatic_deployment(
    fleet_synthesized: Synthesized,
) -> None:
    # Given the fleet example (OU ou-ab12-workload, and the whole organization) / When synthesized
    properties = stack_set(fleet_synthesized.source_template)
    # Then the StackSet is service-managed, created by the delegated administrator (the source account),
    # deploys automatically to accounts that join, to the root (the organization covers the OU), in one Region
    assert properties["PermissionModel"] == "SERVICE_MANAGED"
    assert properties["CallAs"] == "DELEGATED_ADMIN"
    assert properties["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert properties["StackInstancesGroup"] == [
        {"DeploymentTargets": {"OrganizationalUnitIds": [ROOT_ID]}, "Regions": ["us-east-1"]}
    ]
    assert properties["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert properties["StackSetName"] == naming.FLEET_STACK_SET_NAME
    # And it deploys exactly the plain template written beside the stacks, with the config's parameters
    assert json.loads(properties["TemplateBody"]) == plain(fleet_synthesized)
    assert {p["ParameterKey"]: p["ParameterValue"] for p in properties["Parameters"]} == {
        "RoleName": "ecr-replication-fleet",
        "SourceAccountId": "111111111111",
        "SourceRoleArns": ",".join(SOURCE_ROLES),
        "RepositoryPrefix": "mirror/",
        "Regions": "ap-southeast-2,eu-west-1,us-west-2",
        "ExternalId": "",
        "OrganizationId": "",
        "AllowDeletes": "false",
    }


def test_the_stack_set_targets_the_organizational_units_the_config_names(tmp_path: Path) -> None:
    # Given a config naming two OUs (no whole organization) / When synthesized (no root id needed)
    text = FLEET.read_text().replace('"ou-ab12-workload"', '"ou-ab12-workload", "ou-ab12-platform"')
    config = tmp_path / "fleet.yaml"
    config.write_text(text.replace("organization: true", 'organizational_units: ["ou-ab12-shared00"]'))
    app = cdk.App(
        outdir=str(tmp_path / "cdk.out"), context={"config": str(config), "aws:cdk:bundling-stacks": []}
    )
    source, _ = build_app(app, nag=False)
    template = app.synth().get_stack_by_name(source.stack_name).template
    # Then the StackSet deploys to exactly those OUs (nested OUs are deployed to by StackSets themselves)
    (group,) = stack_set(template)["StackInstancesGroup"]
    assert group["DeploymentTargets"] == {
        "OrganizationalUnitIds": ["ou-ab12-platform", "ou-ab12-shared00", "ou-ab12-workload"]
    }


def test_the_plain_template_needs_no_cdk_bootstrap(fleet_synthesized: Synthesized) -> None:
    # Given the fleet role's plain template
    template = plain(fleet_synthesized)
    # Then it has no bootstrap version parameter or rule, no asset, no CDK metadata: only the role
    assert set(template["Parameters"]) == {
        "RoleName",
        "SourceAccountId",
        "SourceRoleArns",
        "RepositoryPrefix",
        "Regions",
        "ExternalId",
        "OrganizationId",
        "AllowDeletes",
    }
    assert "Rules" not in template
    assert [r["Type"] for r in template["Resources"].values()] == ["AWS::IAM::Role"]
    assert "cdk-hnb659fds" not in json.dumps(template)
    assert "BootstrapVersion" not in json.dumps(template)


def test_every_template_of_the_fleet_synth_is_cfn_lint_clean(fleet_synthesized: Synthesized) -> None:
    findings = cfn_lint(fleet_synthesized.template_files)
    assert [f for f in findings if f["Level"] == "Error"] == []
    assert {f["Rule"]["Id"] for f in findings if f["Level"] == "Warning"} <= ACCEPTED_WARNINGS
    assert naming.FLEET_TEMPLATE_FILE in {p.name for p in fleet_synthesized.template_files}


def test_cdk_nag_has_no_unacknowledged_finding_on_the_fleet_synth(fleet_synthesized: Synthesized) -> None:
    # When the AwsSolutions pack validates the source stack and the fleet role's own app
    fleet = fleet_role(fleet_synthesized.settings)
    for scope in (fleet_synthesized.app, fleet.app):
        report = AwsSolutionsChecks().validate_scope(scope)
        # Then nothing is reported
        assert [v.rule_name for v in report.violations] == []


def is_allowed(
    statements: list[dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, str],
    principal: str = "arn:aws:iam::555555555555:role/ecr-replication-fleet",
) -> bool:
    """Whether these identity-policy statements allow the principal the call (tests/iam/simulate.py); the
    resource's own policy (a role's trust) is `trusts`'s, so the resource is evaluated as the principal's."""
    account = principal.split(":")[4]
    (decision,) = evaluate(
        [Request(principal, action, resource, account, tuple(statements), None, tuple(context.items()))]
    )
    return decision.allowed


def trusts(trust: list[dict[str, Any]], caller_account: str, context: dict[str, str]) -> bool:
    """Whether the fleet role's trust policy (in 555555555555) lets the caller AssumeRole, the caller's own
    policy allowing it."""
    named = context.get("aws:PrincipalArn") or f"arn:aws:iam::{caller_account}:root"
    caller = named.replace(
        f":{named.split(':')[4]}:", f":{caller_account}:", 1
    )  # that name, in caller_account
    context = {**context, "aws:PrincipalArn": caller}
    own = ({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},)
    (decision,) = evaluate(
        [
            Request(
                caller,
                "sts:AssumeRole",
                "arn:aws:iam::555555555555:role/ecr-replication-fleet",
                "555555555555",
                own,
                tuple(trust),
                tuple(context.items()),
            )
        ]
    )
    return decision.allowed


def fleet_stack(template: dict[str, Any], account: str, **parameters: Any) -> Stack:
    """The plain template deployed in `account` with `parameters` (the others at their defaults)."""
    return Stack("fleet", template, account, "us-east-1", parameters=parameters)


def test_the_fleet_role_writes_only_repositories_under_the_prefix_in_the_regions(
    fleet_synthesized: Synthesized,
) -> None:
    # Given the fleet role deployed in account 555555555555 with the StackSet's parameters
    stack = fleet_stack(plain(fleet_synthesized), "555555555555")
    statements = stack.statements("Role")
    where = {"aws:RequestedRegion": "eu-west-1"}

    def allowed(action: str, repository: str, context: dict[str, str] = where) -> bool:
        arn = f"arn:aws:ecr:{context['aws:RequestedRegion']}:555555555555:repository/{repository}"
        return is_allowed(statements, action, arn, context)

    # Then it may push and create any repository under mirror/, including one no rule named at deploy time
    assert allowed("ecr:PutImage", "mirror/app")
    assert allowed("ecr:CreateRepository", "mirror/new-team/api")
    # And nothing outside the prefix, in another account, or in a Region it was not given
    assert not allowed("ecr:PutImage", "app")
    assert not allowed("ecr:PutImage", "mirror/app", {"aws:RequestedRegion": "eu-central-1"})
    other = "arn:aws:ecr:eu-west-1:666666666666:repository/mirror/app"
    assert not is_allowed(statements, "ecr:PutImage", other, where)
    # And no tag deletion unless a rule propagating deletes names organization destinations
    assert not allowed("ecr:BatchDeleteImage", "mirror/app")
    allowing = fleet_stack(plain(fleet_synthesized), "555555555555", AllowDeletes="true").statements("Role")
    arn = "arn:aws:ecr:eu-west-1:555555555555:repository/mirror/app"
    assert is_allowed(allowing, "ecr:BatchDeleteImage", arn, where)


def test_the_fleet_role_trusts_only_the_source_roles_with_the_external_id_when_given(
    fleet_synthesized: Synthesized,
) -> None:
    template = plain(fleet_synthesized)
    trust = fleet_stack(template, "555555555555").trust("Role")
    # Given the default parameters / Then the source roles may assume it, no other principal of the account
    for role in SOURCE_ROLES:
        assert trusts(trust, "111111111111", {"aws:PrincipalArn": role})
    assert not trusts(trust, "111111111111", {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/admin"})
    assert not trusts(trust, "999999999999", {"aws:PrincipalArn": SOURCE_ROLES[0]})
    # Given an ExternalId / Then it is required
    guarded = fleet_stack(template, "555555555555", ExternalId="fleet-1").trust("Role")
    assert trusts(guarded, "111111111111", {"aws:PrincipalArn": SOURCE_ROLES[0], "sts:ExternalId": "fleet-1"})
    assert not trusts(guarded, "111111111111", {"aws:PrincipalArn": SOURCE_ROLES[0]})


def role_actions(template: dict[str, Any], role_name_part: str) -> set[str]:
    """The Organizations actions the policies attached to the role whose logical id contains `role_name_part` grant."""
    stack = Stack("source", template, "111111111111", "us-east-1")
    (role_id,) = [r for r in stack.of_type("AWS::IAM::Role") if role_name_part in r]
    return {
        action
        for statement in stack.statements(role_id)
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if action.startswith("organizations:")
    }


def test_the_organizations_reads_go_to_the_plan_and_reconcile_roles_only(
    fleet_synthesized: Synthesized,
) -> None:
    template = fleet_synthesized.source_template
    # Then the roles that resolve organization destinations read exactly what the resolver calls
    assert role_actions(template, "FunctionsPlanRole") == set(ORGANIZATION_ACTIONS)
    assert role_actions(template, "ReconciliationFunctionRole") == set(ORGANIZATION_ACTIONS)
    # And no other role reads the organization
    stack = Stack("source", template, "111111111111", "us-east-1")
    others = [
        r
        for r in stack.of_type("AWS::IAM::Role")
        if "PlanRole" not in r and "ReconciliationFunctionRole" not in r
    ]
    assert {r: role_actions(template, r) for r in others} == {r: set() for r in others}
    # And the delegation policy output names the same actions for the source account
    output = json.loads(template["Outputs"]["OrganizationsDelegationPolicy"]["Value"])
    (statement,) = output["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    assert statement["Action"] == ORGANIZATION_ACTIONS


def test_the_roles_that_reach_destinations_may_assume_the_fleet_role_in_any_account(
    fleet_synthesized: Synthesized,
) -> None:
    stack = Stack("source", fleet_synthesized.source_template, "111111111111", "us-east-1")
    fleet_arn = "arn:aws:iam::555555555555:role/ecr-replication-fleet"
    for part in ("FunctionsPrecheckRole", "CopyRole", "ReconciliationFunctionRole"):
        (role_id,) = [r for r in stack.of_type("AWS::IAM::Role") if part in r]
        source = f"arn:aws:iam::111111111111:role/{role_id}"
        assert is_allowed(stack.statements(role_id), "sts:AssumeRole", fleet_arn, {}, source)
        assert not is_allowed(
            stack.statements(role_id), "sts:AssumeRole", "arn:aws:iam::555555555555:role/admin", {}, source
        )


def test_without_organization_destinations_there_is_no_stack_set_and_no_organizations_read(
    synthesized: Synthesized,
) -> None:
    template = synthesized.source_template
    assert resources(template, "AWS::CloudFormation::StackSet") == {}
    assert "organizations:" not in json.dumps(template)
    # And the plain template is still written, for named accounts deployed without CDK bootstrap
    assert (synthesized.outdir / naming.FLEET_TEMPLATE_FILE).is_file()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {},
            "context 'organization_root_id': required when a destination names the whole organization (the "
            "StackSet deploys the fleet role to the root: `aws organizations list-roots`), e.g. r-ab12",
        ),
        (
            {"organization_root_id": ROOT_ID, "fleet_repository_prefix": "team/"},
            "context 'fleet_repository_prefix': 'team/' does not cover the organization destinations' repositories "
            "'mirror/app', 'mirror/base/', 'mirror/services/': the fleet role could not write them",
        ),
        ({"organization_root_id": "root"}, "context 'organization_root_id': 'root' is not a root id (r-...)"),
        (
            {"organization_root_id": ROOT_ID, "stackset_call_as": "ADMIN"},
            "context 'stackset_call_as': 'ADMIN' is not one of DELEGATED_ADMIN, SELF",
        ),
    ],
)
def test_fleet_settings_refuse_what_cannot_deploy(context: dict[str, str], message: str) -> None:
    values = {"config": str(FLEET), **context}
    with pytest.raises(SettingsError) as raised:
        settings_from_context(values.get)
    assert str(raised.value) == message


def test_the_default_prefix_is_the_path_the_fleet_repositories_share() -> None:
    settings = settings_from_context({"config": str(FLEET), "organization_root_id": ROOT_ID}.get)
    assert naming.fleet_repository_starts(settings.config) == [
        "mirror/app",
        "mirror/base/",
        "mirror/services/",
    ]
    assert settings.repository_prefix == "mirror/"


def test_the_delegation_policy_in_the_deploy_guide_is_the_one_synth_prints_for_the_fleet_example(
    fleet_synthesized: Synthesized,
) -> None:
    # Given docs/deploy.md's delegation policy (the JSON block of "Destinations by organization")
    guide = (REPOSITORY_ROOT / "docs" / "deploy.md").read_text()
    section = guide.split("## Destinations by organization", 1)[1].split("\n## ", 1)[0]
    documented = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    # Then it is the source stack's OrganizationsDelegationPolicy output for examples/fleet.yaml
    output = fleet_synthesized.source_template["Outputs"]["OrganizationsDelegationPolicy"]["Value"]
    assert documented == json.loads(output)
