"""The buildspec's build phase, run with bash as the local runtime runs it, against a fake CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from infra.constructs.copy_project import load_buildspec

pytestmark = pytest.mark.infrastructure

FAKE_CLI = """#!/usr/bin/env bash
# Records its arguments (one per line) and writes a result file like ecr-replicate copy does.
# FAKE_OUTCOME: copied (default), failed (error result, exit 1), crashed (no result, exit 1) or
# truncated (half a result, exit 1).
printf '%s\\n' "$@" > "$ARGS_FILE"
while [ "$#" -gt 0 ]; do
  if [ "$1" = --result-file ]; then
    case "${FAKE_OUTCOME:-copied}" in
      copied) printf '{"action": "copied", "digest": "sha256:ab"}' > "$2" ;;
      failed) printf '{"error": "DigestMismatch", "message": "blob sha256:cd hashes to sha256:ef"}' > "$2" ;;
      truncated) printf '{"error": "DigestMis' > "$2" ;;
    esac
  fi
  shift
done
[ "${FAKE_OUTCOME:-copied}" = copied ]
"""


def _run_build_phase(
    tmp_path: Path, *, expect_success: bool = True, **variables: str
) -> tuple[list[str], str]:
    spec = load_buildspec()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "ecr-replicate"
    cli.write_text(FAKE_CLI)
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    script = "set -eo pipefail\n" + "\n".join(spec["phases"]["build"]["commands"]) + '\nprintf %s "$RESULT"'
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ARGS_FILE": str(tmp_path / "args"),
        "SOURCE_IMAGE": "",
        "DESTINATION_IMAGE": "",
        "DST_ROLE_ARN": "",
        "DST_EXTERNAL_ID": "",
        "DST_REGION": "",
        "DST_CREDENTIALS_SECRET": "",
        "DST_CREDENTIALS_REGION": "",
        "INSECURE_REGISTRIES": "",
        "PUT_RATE": "",
        "ON_TAG_CONFLICT": "",
        "SEED_IMAGE": "",
        "SEED_ROLE_ARN": "",
        "SEED_EXTERNAL_ID": "",
        "RELAY_FUNCTION": "",
        "SRC_ROLE_ARN": "",
        **variables,
    }
    completed = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (completed.returncode == 0) is expect_success, completed.stderr
    return (tmp_path / "args").read_text().splitlines(), completed.stdout


def test_buildspec_exports_result_and_never_needs_docker() -> None:
    spec = load_buildspec()
    assert spec["env"]["exported-variables"] == ["RESULT"]
    assert "docker" not in json.dumps(spec).lower()


def test_build_phase_passes_the_images_and_role_and_exports_the_result(tmp_path: Path) -> None:
    # Given a target without external id or insecure registries
    args, result = _run_build_phase(
        tmp_path,
        SOURCE_IMAGE="111111111111.dkr.ecr.us-east-1.amazonaws.com/app:release-1",
        DESTINATION_IMAGE="222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:release-1",
        DST_ROLE_ARN="arn:aws:iam::222222222222:role/ecr-replication-target",
    )
    # Then the CLI gets exactly these arguments, and RESULT is the result file
    assert args == [
        "copy",
        "111111111111.dkr.ecr.us-east-1.amazonaws.com/app:release-1",
        "222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:release-1",
        "--dst-role-arn",
        "arn:aws:iam::222222222222:role/ecr-replication-target",
        "--result-file",
        "result.json",
    ]
    assert json.loads(result) == {"action": "copied", "digest": "sha256:ab"}


def test_build_phase_passes_the_rules_on_tag_conflict(tmp_path: Path) -> None:
    # Given a target of a rule that refuses to replace a destination tag
    args, _ = _run_build_phase(
        tmp_path,
        SOURCE_IMAGE="127.0.0.1:5000/app:v1",
        DESTINATION_IMAGE="127.0.0.1:5001/app:v1",
        DST_ROLE_ARN="arn:aws:iam::333333333333:role/ecr-replication-target",
        ON_TAG_CONFLICT="refuse",
    )
    # Then the copy is told so
    assert args[args.index("--on-tag-conflict") + 1] == "refuse"


def test_build_phase_adds_external_id_and_each_insecure_registry(tmp_path: Path) -> None:
    # Given an external id (with a space, to prove quoting) and two insecure registries
    args, _ = _run_build_phase(
        tmp_path,
        SOURCE_IMAGE="127.0.0.1:5000/app:v1",
        DESTINATION_IMAGE="127.0.0.1:5001/app:v1",
        DST_ROLE_ARN="arn:aws:iam::333333333333:role/ecr-replication-target",
        DST_EXTERNAL_ID="dr replication",
        INSECURE_REGISTRIES="127.0.0.1:5000 127.0.0.1:5001",
    )
    assert args[args.index("--dst-external-id") + 1] == "dr replication"
    registries = [args[i + 1] for i, a in enumerate(args) if a == "--insecure-registry"]
    assert registries == ["127.0.0.1:5000", "127.0.0.1:5001"]


def test_build_phase_passes_the_credentials_secret_of_a_destination_in_another_partition(
    tmp_path: Path,
) -> None:
    """Given a destination in aws-cn, with its credentials secret's name (with a space, to prove quoting)
    When the build phase runs Then the CLI gets the secret's name and Region and the destination's Region;
    without a secret none of the three options is passed, even with DST_REGION set."""
    args, _ = _run_build_phase(
        tmp_path,
        SOURCE_IMAGE="111111111111.dkr.ecr.us-east-1.amazonaws.com/app:v1",
        DESTINATION_IMAGE="777777777777.dkr.ecr.cn-north-1.amazonaws.com.cn/app:v1",
        DST_ROLE_ARN="arn:aws-cn:iam::777777777777:role/ecr-replication-target",
        DST_REGION="cn-north-1",
        DST_CREDENTIALS_SECRET="ecr replication/cn",
        DST_CREDENTIALS_REGION="us-east-1",
    )
    assert args[args.index("--dst-credentials-secret") + 1] == "ecr replication/cn"
    assert args[args.index("--dst-credentials-region") + 1] == "us-east-1"
    assert args[args.index("--dst-region") + 1] == "cn-north-1"
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain, _ = _run_build_phase(plain_dir, DST_REGION="eu-west-1")
    assert not {"--dst-credentials-secret", "--dst-credentials-region", "--dst-region"} & set(plain)


def test_build_phase_paces_manifest_puts_at_the_planned_share(tmp_path: Path) -> None:
    """Given the share of the PutImage quota the plan gave the target (PUT_RATE)
    When the build phase runs Then the CLI paces at it; without one (an older execution) no option is passed."""
    args, _ = _run_build_phase(tmp_path, PUT_RATE="2.5")
    assert args[args.index("--put-rate") + 1] == "2.5"
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain, _ = _run_build_phase(plain_dir)
    assert "--put-rate" not in plain


def test_build_phase_passes_a_seeded_destinations_seed_role_and_relay(tmp_path: Path) -> None:
    """Given a destination seeded inside its Region (with an ExternalId holding a space, to prove quoting)
    When the build phase runs Then the CLI gets the seed, its role and ExternalId, and the relay; without a seed,
    none of the four options is passed."""
    args, _ = _run_build_phase(
        tmp_path,
        SOURCE_IMAGE="111111111111.dkr.ecr.us-east-1.amazonaws.com/app:v1@sha256:ab",
        DESTINATION_IMAGE="333333333333.dkr.ecr.eu-west-1.amazonaws.com/app:v1",
        DST_ROLE_ARN="arn:aws:iam::333333333333:role/ecr-replication-target",
        SEED_IMAGE="222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:v1",
        SEED_ROLE_ARN="arn:aws:iam::222222222222:role/ecr-replication-target",
        SEED_EXTERNAL_ID="seed id",
        RELAY_FUNCTION="arn:aws:lambda:eu-west-1:111111111111:function:ecr-replication-relay",
    )
    assert args[args.index("--seed") + 1] == "222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:v1"
    assert args[args.index("--seed-role-arn") + 1] == "arn:aws:iam::222222222222:role/ecr-replication-target"
    assert args[args.index("--seed-external-id") + 1] == "seed id"
    assert args[args.index("--relay-function") + 1].endswith(":function:ecr-replication-relay")
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain, _ = _run_build_phase(plain_dir)
    assert not {"--seed", "--seed-role-arn", "--seed-external-id", "--relay-function"} & set(plain)


def test_build_phase_reads_a_source_in_another_account_through_its_role(tmp_path: Path) -> None:
    """Given a source in another account than the home one (its read-only role in SRC_ROLE_ARN)
    When the build phase runs Then the CLI gets --src-role-arn with it; without one, no such option."""
    role = "arn:aws:iam::333333333333:role/ecr-replication-source-access"
    args, _ = _run_build_phase(
        tmp_path,
        SOURCE_IMAGE="333333333333.dkr.ecr.us-west-2.amazonaws.com/app:v1",
        DESTINATION_IMAGE="222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:v1",
        DST_ROLE_ARN="arn:aws:iam::222222222222:role/ecr-replication-target",
        SRC_ROLE_ARN=role,
    )
    assert args[args.index("--src-role-arn") + 1] == role
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain, _ = _run_build_phase(plain_dir)
    assert "--src-role-arn" not in plain


def test_a_failed_copy_still_exports_its_error_for_the_state_machine(tmp_path: Path) -> None:
    # Given a copy that fails and reports why in its result file
    _, result = _run_build_phase(tmp_path, FAKE_OUTCOME="failed")
    # Then the build phase succeeds and RESULT carries the copier's own error
    assert json.loads(result) == {"error": "DigestMismatch", "message": "blob sha256:cd hashes to sha256:ef"}


@pytest.mark.parametrize("outcome", ["crashed", "truncated"])
def test_a_copy_that_leaves_no_readable_result_fails_the_build(tmp_path: Path, outcome: str) -> None:
    # Given a copy command that dies without a result, or with half of one / Then the build phase fails
    _run_build_phase(tmp_path, expect_success=False, FAKE_OUTCOME=outcome)
