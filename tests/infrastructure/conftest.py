"""Synthesize the CDK app once per test session and expose the templates and assets."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# As the Makefile does: jsii's Node end-of-life banner would otherwise be part of every synth's output.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

import aws_cdk as cdk

from infra import naming
from infra.app import build_app
from infra.constructs.state_machine import DEFINITION_FILE
from infra.settings import REPOSITORY_ROOT, DeploySettings, settings_from_context
from infra.stacks.destination_stack import DestinationStack
from infra.stacks.source_stack import SourceStack

CONTEXT = {"config": "examples/replication.yaml", "copy_compute": "lambda"}


@dataclass
class Synthesized:
    """The synthesized app: the construct tree, the settings, and the cloud assembly on disk."""

    app: cdk.App
    settings: DeploySettings
    source: SourceStack
    destinations: list[DestinationStack]
    outdir: Path
    definition_file: Path

    def template(self, stack_name: str) -> dict[str, Any]:
        """A synthesized template."""
        return json.loads((self.outdir / f"{stack_name}.template.json").read_text())

    @property
    def source_template(self) -> dict[str, Any]:
        """The source stack's template."""
        return self.template(naming.SOURCE_STACK_NAME)

    @property
    def templates(self) -> dict[str, dict[str, Any]]:
        """Every template, by stack name."""
        return {p.name.removesuffix(".template.json"): json.loads(p.read_text()) for p in self.template_files}

    @property
    def template_files(self) -> list[Path]:
        """Every template file."""
        return sorted(self.outdir.glob("*.template.json"))

    def asset_path(self, stack_name: str, object_key: str) -> Path:
        """The staged asset behind an S3 object key of a stack."""
        manifest = json.loads((self.outdir / f"{stack_name}.assets.json").read_text())
        for entry in manifest["files"].values():
            if any(d["objectKey"] == object_key for d in entry["destinations"].values()):
                return self.outdir / entry["source"]["path"]
        raise KeyError(f"no asset with object key {object_key} in {stack_name}")


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The resources of one type in a template, by logical id."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Synthesize both stacks from examples/replication.yaml, with cdk-nag enforcing at synth.

    The config is copied outside this checkout first, where a platform team keeps theirs.
    """
    outdir = tmp_path_factory.mktemp("cdk.out")
    config = tmp_path_factory.mktemp("team-repo") / "replication.yaml"
    config.write_bytes((REPOSITORY_ROOT / CONTEXT["config"]).read_bytes())
    definition_file = DEFINITION_FILE
    app = cdk.App(outdir=str(outdir), context={**CONTEXT, "config": str(config)})
    settings = settings_from_context(app.node.try_get_context)
    source, destinations = build_app(app, settings, definition_file=definition_file)
    app.synth()
    return Synthesized(app, settings, source, destinations, outdir, definition_file)
