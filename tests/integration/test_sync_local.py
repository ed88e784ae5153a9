"""`sync --local` against real registries on loopback: backfill an empty and a half-filled destination."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.images import ImageBuilder
from tests.integration.registries import RegistryServer
from workflow.cli import main
from workflow.engine.copier import copy_image as copy
from workflow.models.config import parse_config
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync
from workflow.registry.client import RegistryClient

pytestmark = pytest.mark.integration
SOURCE, EMPTY, HALF = "111111111111", "222222222222", "333333333333"


@pytest.fixture(scope="module")
def half_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A second anonymous destination registry, for this module only."""
    server = RegistryServer.start(tmp_path_factory.mktemp("sync-half"), "none")
    yield server
    server.stop()


def head(server: RegistryServer, repository: str, tag: str) -> str | None:
    """The digest under `repository:tag`, or None."""
    return RegistryClient(server.host, insecure=True).head_manifest(repository, tag)


def test_backfill_then_a_second_run_does_nothing(
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    half_registry: RegistryServer,
    builder: ImageBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a source with matching and non-matching tags in two repositories of a fresh prefix
    prefix = f"sync{uuid.uuid4().hex[:10]}"
    app, tools = f"{prefix}/app", f"{prefix}/tools"
    pushed = {
        (app, "release-1"): builder.index(app, "release-1").digest,
        (app, "release-2"): builder.image(app, "release-2").digest,
        (app, "release-3-rc1"): builder.image(app, "release-3-rc1").digest,
        (app, "dev-1"): builder.image(app, "dev-1").digest,
        (tools, "release-1"): builder.image(tools, "release-1", docker=True).digest,
        (tools, "latest"): builder.image(tools, "latest").digest,
    }
    accepted = [(app, "release-1"), (app, "release-2"), (tools, "release-1")]
    # and a config sending release-* (not *-rc*) to an empty and to a half-filled destination
    raw: dict[str, Any] = {
        "source": {"account": SOURCE, "region": "us-east-1"},
        "rules": [
            {
                "name": "backfill",
                "repositories": [f"{prefix}/*"],
                "tags": {"include": ["release-*"], "exclude": ["*-rc*"]},
                "destinations": [
                    {"account": EMPTY, "regions": ["eu-west-1"]},
                    {"account": HALF, "regions": ["eu-west-1"]},
                ],
            }
        ],
        "endpoints": [
            {"account": SOURCE, "region": "us-east-1", "registry": source_registry.host, "insecure": True},
            {"account": EMPTY, "region": "eu-west-1", "registry": dest_registry.host, "insecure": True},
            {"account": HALF, "region": "eu-west-1", "registry": half_registry.host, "insecure": True},
        ],
    }
    config = parse_config(raw)
    insecure = (source_registry.host, half_registry.host)
    src = f"{source_registry.host}/{app}"
    copy(f"{src}:release-1", f"{half_registry.host}/{app}:release-1", insecure_registries=insecure)
    copy(f"{src}:release-2", f"{half_registry.host}/{app}:old", insecure_registries=insecure)

    # When syncing locally
    first = sync(config, SyncOptions(local=True, max_in_flight=3))

    # Then the counts say what happened: one present, one tagged, four copies, nothing failed
    assert (first.examined, first.not_matching) == (6, 3)
    assert (first.present, first.tagged, first.started, first.failed) == (1, 1, 4, 0), first.to_dict()
    # and both destinations hold every accepted tag under the source digest, and nothing else
    for server in (dest_registry, half_registry):
        for repository, tag in accepted:
            assert head(server, repository, tag) == pushed[(repository, tag)], (server.host, repository, tag)
        for repository, tag in set(pushed) - set(accepted):
            assert head(server, repository, tag) is None, (server.host, repository, tag)

    # When syncing again, through the CLI
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(raw))
    code = main(["sync", str(path), "--local", "--json"])

    # Then it does nothing: every target is present
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["actions"] == []
    assert report["counts"]["already present (targets)"] == 6
    assert report["counts"]["copied"] == 0
