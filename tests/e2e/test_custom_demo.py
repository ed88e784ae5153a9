"""`ecr-replicate demo --config FILE`: your own rules through the local runtime, checked with skopeo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workflow.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.own_runtime]


def test_demo_runs_your_own_rules_and_checks_where_each_push_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a config of my own: app's release tags (not rc) to a mirror repository in one destination
    config = {
        "source": {"account": "111111111111", "region": "us-east-1"},
        "rules": [
            {
                "name": "mine",
                "repositories": ["app"],
                "tags": {"include": ["release-*"], "exclude": ["*-rc*"]},
                "destinations": [
                    {"account": "222222222222", "regions": ["eu-west-1"], "repository": "mirror/{repository}"}
                ],
            }
        ],
        "notifications": {"emails": ["me@example.com"], "on": "always"},
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(config))
    # When the demo runs it with a release, a release candidate and a dev push
    code = main(
        [
            "demo",
            "--config",
            str(path),
            "--push",
            "app:release-1",
            "--push",
            "app:release-2-rc1",
            "--push",
            "app:dev-1",
        ]
    )
    out = capsys.readouterr().out
    # Then it passes, the release is in the mirror repository (skopeo), the others nowhere, and the email was shown
    assert code == 0, out
    assert (
        "ok  222222222222/eu-west-1 mirror/app:release-1: copied, same digest and platforms (skopeo)" in out
    )
    assert out.count("ok  222222222222/eu-west-1: not a destination of app:") == 2
    assert "email: ECR replication SUCCEEDED: app:release-1" in out
    assert "DEMO PASSED" in out
