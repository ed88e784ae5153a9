"""The CDK app: `python -m infra.app` synthesizes the stacks into cdk.out (no AWS account needed): the source stack
(in the home source), one destination stack per destination account, one forwarding stack per other source, and
with `regional_seeds` one relay stack per seeded Region; and it writes the fleet role as a plain CloudFormation
template, cdk.out/destination-role.template.json (no CDK bootstrap needed where it is deployed).

Context (`cdk synth -c key=value` or cdk.json): `config` (default examples/replication.yaml),
`emails` (comma list), `copy_compute` (lambda | ec2), `organization_id`, and for organization destinations
`organization_root_id`, `stackset_call_as`, `fleet_repository_prefix` (infra/settings.py).
A config or context error is one line on stderr, exit status 2, the same text `ecr-replicate validate` prints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra import naming
from infra.constructs.state_machine import DEFINITION_FILE
from infra.settings import REPOSITORY_ROOT, DeploySettings, SettingsError, settings_from_context
from infra.stacks.destination_stack import DestinationStack, destination_region
from infra.stacks.fleet_role import fleet_role
from infra.stacks.forwarding_stack import ForwardingStack
from infra.stacks.relay_stack import RelayStack
from infra.stacks.source_stack import SourceStack
from workflow.core.exceptions import InvalidConfig
from workflow.models.config import ReplicationConfig
from workflow.models.forwarding import forwarded_sources
from workflow.pipeline.seeds import relay_regions


def _destination_description(config: ReplicationConfig, account: str) -> str:
    """Who writes into this destination account: the source's roles, or in another partition its user."""
    other_partition = any(
        d.credentials is not None
        for rule in config.rules
        for d in rule.account_destinations
        if d.account == account
    )
    writer = (
        "the configured user of this partition" if other_partition else f"the role {config.source.account}"
    )
    return f"ECR filtered replication: {writer} assumes to write here"


def build_app(
    app: cdk.App,
    settings: DeploySettings | None = None,
    *,
    definition_file: Path = DEFINITION_FILE,
    nag: bool = True,
) -> tuple[SourceStack, list[DestinationStack]]:
    """Add the source stack and one destination stack per destination account to `app`, and one forwarding stack
    per source other than the home one (`forwarding_stacks(app)` finds them).

    With `nag`, cdk-nag's AwsSolutions pack runs at synth and any unacknowledged finding fails it.
    """
    settings = settings or settings_from_context(app.node.try_get_context)
    config = settings.config
    fleet = fleet_role(settings, nag=nag)
    write_fleet_template(Path(app.outdir), fleet.template)
    source = SourceStack(
        app,
        naming.SOURCE_STACK_NAME,
        settings=settings,
        definition_file=definition_file,
        fleet_template=fleet.template,
        env=cdk.Environment(account=config.source.account, region=config.source.region),
        description="ECR filtered replication: trigger, workflow, copy job and notifications",
    )
    destinations = [
        DestinationStack(
            app,
            naming.destination_stack_name(account),
            settings=settings,
            account=account,
            env=cdk.Environment(account=account, region=destination_region(settings, account)),
            description=_destination_description(config, account),
        )
        for account in naming.destination_accounts(config)
    ]
    for region in relay_regions(config):  # regional_seeds: a relay function in each seeded Region
        relay = RelayStack(
            app,
            naming.relay_stack_name(region),
            settings=settings,
            env=cdk.Environment(account=config.source.account, region=region),
            description=f"ECR filtered replication: the relay copying inside {region} from a seed",
        )
        relay.add_stack_dependency(source)  # it names the relay role the source stack creates
    for other in forwarded_sources(config):
        ForwardingStack(
            app,
            naming.forwarding_stack_name(other),
            settings=settings,
            source=other,
            env=cdk.Environment(account=other.account, region=other.region),
            description=f"ECR filtered replication: forwards {other.name}'s ECR events to the home source "
            f"{config.source.name}",
        )
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return source, destinations


def write_fleet_template(outdir: Path, template: dict[str, Any]) -> Path:
    """Write the fleet role's plain template (parameters, no CDK bootstrap) beside the stacks' templates."""
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / naming.FLEET_TEMPLATE_FILE
    path.write_text(json.dumps(template, indent=1) + "\n", encoding="utf-8")
    return path


def forwarding_stacks(app: cdk.App) -> list[ForwardingStack]:
    """The forwarding stacks `build_app` added, in the config's order."""
    return [child for child in app.node.children if isinstance(child, ForwardingStack)]


def main() -> int:
    """Synthesize the app into cdk.out (or where the CDK CLI says, through CDK_OUTDIR); returns the exit status."""
    app = cdk.App(outdir=None if os.environ.get("CDK_OUTDIR") else str(REPOSITORY_ROOT / "cdk.out"))
    try:
        build_app(app)
    except InvalidConfig as error:
        print(f"error: invalid replication config: {'; '.join(error.problems)}", file=sys.stderr)
        return 2
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
