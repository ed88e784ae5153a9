"""The README a newcomer can finish: the two commands first, then the deploy checklist, the platforms, and an
install that works before a package is published."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
CHECKLIST = ("Validate", "Synth", "Bootstrap", "Deploy the destination stacks", "Deploy the source stack",
             "Confirm the email subscription", "Dry run", "First push")  # fmt: skip


def test_the_two_commands_then_the_deploy_checklist_come_first() -> None:
    lines = README.splitlines()
    assert lines[3].startswith("make demo   # set-up included")
    assert lines[4].startswith("make test   # set-up included")
    headings = re.findall(r"^## (.+)$", README, flags=re.M)
    assert headings[0] == "Deploy checklist"
    steps = re.findall(
        r"^\d+\. \*\*(.+?)\*\*", README.split("## Deploy checklist", 1)[1].split("\n## ", 1)[0], re.M
    )
    assert tuple(steps) == CHECKLIST


def test_platforms_are_named_and_the_cli_installs_from_the_repository() -> None:
    assert "## Platforms and installing the CLI" in README
    # no install of a package name that is not published
    assert not re.search(r"pip install ecr-filtered-replication(?![\[\w@ ]*@ git\+)", README)
    assert 'pip install "ecr-filtered-replication @ git+https://github.com/' in README


def test_native_replication_is_compared_as_it_is_now() -> None:
    section = README.split("## Why, and native ECR replication", 1)[1].split("\n## ", 1)[0]
    for cited in ("replication-delete.html", "replication-backfill.html", "API_ReplicationRule.html"):
        assert cited in section
    for still_missing in ("**tags**", "promotion gates", "other partitions"):
        assert still_missing in section
