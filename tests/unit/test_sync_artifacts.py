"""`sync` under a rule taking every tag: cosign's signature tags are not images to repair on their own (sync plans
each source tag with the Plan step's `plan`, which skips them)."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.fake_ecr import digest, push
from tests.unit.test_sync import CONFIG, idle_world, state_machine  # noqa: F401 - fixture
from workflow.models.config import parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync


def test_a_signature_tag_is_examined_but_never_planned_as_an_image(idle_world: AwsClients) -> None:  # noqa: F811
    # Given a rule taking every tag of `app`, and app holding cosign's signature tag of release-1
    signature = digest(10).replace(":", "-") + ".sig"
    push(idle_world.client("ecr", "us-east-1"), "app", signature, 70)
    raw: dict[str, Any] = json.loads(json.dumps(CONFIG))
    raw["rules"][0].update(repositories=["app"], tags={"include": ["*"]})
    # When syncing with --dry-run
    report = sync(
        parse_config(raw),
        SyncOptions(state_machine_arn=state_machine(idle_world), dry_run=True),
        clients=idle_world,
    )
    # Then every image tag is planned where it is missing, and the signature tag is not (it travels with
    # release-1's copy), counted as not matching
    planned = {(a.kind, a.tag) for a in report.actions}
    assert ("start", "release-1") in planned
    assert not [tag for _, tag in planned if tag == signature]
    assert report.not_matching == 1
