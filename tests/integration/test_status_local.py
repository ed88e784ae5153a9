"""`ecr-replicate status` against real registries on loopback: present, stale and missing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.images import ImageBuilder
from tests.integration.registries import RegistryServer
from workflow.cli import main
from workflow.engine.copier import copy_image as copy
from workflow.local.signing import new_key, public_pem, push_signature
from workflow.models.config import parse_config
from workflow.ops.status import image_status
from workflow.registry.client import RegistryClient

pytestmark = pytest.mark.integration
SOURCE, FIRST, SECOND = "111111111111", "222222222222", "333333333333"


def test_status_reads_each_destination_registry(
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    builder: ImageBuilder,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a source with release-1 (multi-arch) and release-2 in a fresh repository
    app = f"status{uuid.uuid4().hex[:10]}/app"
    release_1 = builder.index(app, "release-1").digest
    release_2 = builder.image(app, "release-2").digest
    other = builder.image(app, "other").digest
    # and one destination holding release-1 as is and release-2 under another digest (stale),
    # the second destination (another repository of the same registry) holding nothing
    insecure = (source_registry.host, dest_registry.host)
    src = f"{source_registry.host}/{app}"
    copy(f"{src}:release-1", f"{dest_registry.host}/{app}:release-1", insecure_registries=insecure)
    copy(f"{src}:other", f"{dest_registry.host}/{app}:release-2", insecure_registries=insecure)
    raw: dict[str, Any] = {
        "source": {"account": SOURCE, "region": "us-east-1"},
        "rules": [
            {
                "name": "releases",
                "repositories": [app],
                "tags": {"include": ["release-*"]},
                "destinations": [
                    {"account": FIRST, "regions": ["eu-west-1"]},
                    {"account": SECOND, "regions": ["eu-west-1"], "repository": "mirror/{repository}"},
                ],
            }
        ],
        "endpoints": [
            {"account": SOURCE, "region": "us-east-1", "registry": source_registry.host, "insecure": True},
            {"account": FIRST, "region": "eu-west-1", "registry": dest_registry.host, "insecure": True},
            {"account": SECOND, "region": "eu-west-1", "registry": dest_registry.host, "insecure": True},
        ],
    }

    # When asking the status of every accepted tag, counting the destination's manifest HEADs
    heads: list[str] = []
    original = RegistryClient.head_manifest

    def counting(self: RegistryClient, repository: str, reference: str) -> str | None:
        if self.registry == dest_registry.host:
            heads.append(f"{repository}:{reference}")
        return original(self, repository, reference)

    monkeypatch.setattr(RegistryClient, "head_manifest", counting)
    report = image_status(parse_config(raw), app)

    # Then each (tag, destination) is present, stale or missing, with the destination's digest
    found = {(e.tag, e.account): (e.state, e.digest) for e in report.entries}
    assert found == {
        ("release-1", FIRST): ("present", release_1),
        ("release-1", SECOND): ("missing", None),
        ("release-2", FIRST): ("stale", other),
        ("release-2", SECOND): ("missing", None),
    }
    assert {e.source_digest for e in report.entries if e.tag == "release-2"} == {release_2}
    # and a plain registry costs one HEAD per tag and destination (it has no listing with digests)
    assert len(heads) == 4

    # And the CLI says the same, with exit 1 until the destinations are repaired
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(raw))
    assert main(["status", str(path), f"{app}:release-1", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["counts"] == {"present": 1, "stale": 0, "missing": 1, "blocked": 0, "unknown": 0}
    copy(f"{src}:release-1", f"{dest_registry.host}/mirror/{app}:release-1", insecure_registries=insecure)
    assert main(["status", str(path), f"{app}:release-1"]) == 0
    assert "present" in capsys.readouterr().out


def test_status_blocks_an_image_without_a_trusted_signature(
    source_registry: RegistryServer, dest_registry: RegistryServer, builder: ImageBuilder, repo: str
) -> None:
    # Given release-1 signed in cosign's format with the key a rule's signature gate trusts, release-2 unsigned
    key = new_key()
    signed = builder.image(repo, "release-1", layer_sizes=(64,)).digest
    builder.image(repo, "release-2", layer_sizes=(64,))
    push_signature(source_registry.url, source_registry.host, repo, signed, key)
    raw: dict[str, Any] = {
        "source": {"account": SOURCE, "region": "us-east-1"},
        "rules": [
            {
                "name": "releases",
                "repositories": [repo],
                "tags": {"include": ["release-*"]},
                "destinations": [{"account": FIRST, "regions": ["eu-west-1"]}],
                "gates": {"signature": {"cosign_keys": [public_pem(key)]}},
            }
        ],
        "endpoints": [
            {"account": SOURCE, "region": "us-east-1", "registry": source_registry.host, "insecure": True},
            {"account": FIRST, "region": "eu-west-1", "registry": dest_registry.host, "insecure": True},
        ],
    }
    # When asking the status of every accepted tag (the signatures read from the source registry)
    report = image_status(parse_config(raw), repo)
    # Then the signed image is missing (it may replicate), the unsigned one blocked with the reason
    assert {e.tag: e.state for e in report.entries} == {"release-1": "missing", "release-2": "blocked"}
    gates = {e.tag: e.gate for e in report.entries}
    assert gates["release-1"] is None
    assert gates["release-2"] is not None
    assert gates["release-2"].startswith("rule 'releases' blocks: no signature found for sha256:")
