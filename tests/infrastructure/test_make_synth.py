"""`make synth CONFIG=path`: templates of exactly the stacks that config produces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.infrastructure

ROOT = Path(__file__).parents[2]
CONFIG = {
    "source": {"account": "111111111111", "region": "us-east-1"},
    "rules": [
        {
            "name": "only",
            "tags": {"include": ["v*"]},
            "destinations": [{"account": "444444444444", "regions": ["eu-west-1"]}],
        }
    ],
}


@pytest.mark.timeout(900)
def test_make_synth_takes_the_config_and_removes_templates_of_stacks_no_longer_produced(
    tmp_path: Path,
) -> None:
    # Given an output directory holding the template of a destination that is no longer configured
    out = tmp_path / "cdk.out"
    out.mkdir()
    for suffix in ("template", "assets", "metadata"):
        (out / f"EcrReplicationDestination-222222222222.{suffix}.json").write_text("{}")
    config = tmp_path / "replication.json"
    config.write_text(json.dumps(CONFIG))
    # When `make synth` runs with the user's config (setup taken as done: the venv is this one)
    completed = subprocess.run(
        [shutil.which("make") or "make", "-o", "setup", "synth", f"CONFIG={config}", f"OUT={out}"],
        cwd=ROOT,
        env={**os.environ, "ECR_REPLICATION_BUNDLE_CACHE": str(ROOT / "cdk.out" / ".bundle-cache")},
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    # Then the templates are the source stack and the one configured destination, nothing else
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in out.glob("*.template.json")) == [
        "EcrReplicationDestination-444444444444.template.json",
        "EcrReplicationSource.template.json",
        "destination-role.template.json",
    ]
    assert not list(out.glob("EcrReplicationDestination-222222222222.*"))


def test_make_synth_with_an_invalid_config_is_one_line_exit_2(tmp_path: Path) -> None:
    # Given a config with an unquoted account id
    config = tmp_path / "bad.yaml"
    config.write_text("source: {account: 111111111111, region: us-east-1}\nrules: []\n")
    # When the CDK app runs with it
    completed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "infra.app"],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_OUTDIR": str(tmp_path / "out"),
            "CDK_CONTEXT_JSON": json.dumps({"config": str(config)}),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then exit 2 with one line, no traceback
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.startswith("error: invalid replication config: source.account: ")
    assert completed.stderr.count("\n") == 1
