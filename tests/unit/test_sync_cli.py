"""`ecr-replicate sync`: output, exit codes, argument errors (moto as AWS)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.unit.fake_ecr import use_moto_environment
from tests.unit.test_sync import CONFIG, IDLE, PASS_MACHINE, SOURCE, build_world, refuse_role_of
from workflow.cli import main
from workflow.engine.progress import SyncProgress
from workflow.ops.inventory import AwsClients


@pytest.fixture
def moto_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """The world of test_sync in moto (executions stay RUNNING)."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE):
        yield build_world(AwsClients(boto3.Session()))


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    """The test config as a JSON file."""
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


@pytest.fixture
def machine(moto_world: AwsClients) -> str:
    """A state machine ARN."""
    client = moto_world.client("stepfunctions", "us-east-1")
    return str(
        client.create_state_machine(
            name="m", definition=PASS_MACHINE, roleArn=f"arn:aws:iam::{SOURCE}:role/s"
        )["stateMachineArn"]
    )


def test_dry_run_prints_the_plan_and_the_table(
    machine: str, config_file: str, moto_world: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the world When running sync --dry-run
    code = main(["sync", config_file, "--dry-run", "--state-machine-arn", machine])

    # Then exit 0, one line per planned action, the table, and no execution
    out, err = capsys.readouterr()
    assert code == 0
    assert "would start execution sync-services-api-" in out
    assert "would tag app:release-2" in out
    assert "images examined" in out
    assert "2 source repositories selected" in err
    sfn = moto_world.client("stepfunctions", "us-east-1")
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []


def test_json_report_counts_started_executions(
    machine: str, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the world When running sync --no-wait --json
    code = main(["sync", config_file, "--no-wait", "--json", "--state-machine-arn", machine])

    # Then exit 0 and the JSON counts say what was done
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert code == 0
    assert (counts["executions started"], counts["tagged (targets)"], counts["failed"]) == (3, 1, 0)


def test_executions_beyond_max_in_flight_are_deferred_not_failed(
    machine: str, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the world When running sync --no-wait --max-in-flight 2
    code = main(["sync", config_file, "--no-wait", "--max-in-flight", "2", "--state-machine-arn", machine])

    # Then exit 0, and the table says 2 started and 1 left for the next run
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"executions started +2\n", out)
    assert re.search(r"deferred to the next run +1\n", out)
    assert "FAILED" not in out


def test_failures_exit_1(
    moto_world: AwsClients, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a state machine ARN that does not exist
    missing = f"arn:aws:states:us-east-1:{SOURCE}:stateMachine:gone"

    # When syncing Then exit 1, each failure named
    code = main(["sync", config_file, "--no-wait", "--state-machine-arn", missing])
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("FAILED start execution") == 3
    assert "StateMachineDoesNotExist" in out


def test_a_destination_that_cannot_be_listed_exits_1_after_repairing_the_others(
    machine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a third destination whose role is not deployed yet
    raw = json.loads(json.dumps(CONFIG))
    raw["rules"][0]["destinations"].append({"account": "333333333333", "regions": ["eu-west-1"]})
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(raw))
    refuse_role_of("333333333333", monkeypatch)

    # When syncing
    code = main(["sync", str(path), "--no-wait", "--state-machine-arn", machine])

    # Then exit 1, the listing named as failed, and the other destinations' work started
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED list app at 333333333333/eu-west-1: RegistryAuthError" in out
    assert re.search(r"executions started +3\n", out)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--local", "--repository", "app[1]"], "--repository"),
        (["--state-machine-arn", "arn:aws:sns:us-east-1:1:x"], "not a state machine ARN"),
    ],
)
def test_bad_input_exits_2(
    config_file: str, arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a bad argument When running sync Then exit 2 with a message naming it
    assert main(["sync", config_file, "--dry-run", *arguments]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments",
    [
        ["--local", "--since", "yesterday"],
        [],
        ["--local", "--state-machine-arn", "arn"],
        ["--local", "--max-in-flight", "0"],
    ],
)
def test_argument_errors_exit_2(
    config_file: str, arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given malformed arguments When parsing Then exit 2 with argparse's reason in one line
    assert main(["sync", config_file, *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ecr-replicate sync: ")
    assert err.count("\n") == 1


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    # Given a terminal and a pipe
    terminal, pipe = _Terminal(), io.StringIO()
    bar, lines = SyncProgress(terminal), SyncProgress(pipe)

    # When reporting progress and log lines to both
    for progress in (bar, lines):
        progress.update("inventory", 5, 10)
        progress.log("done: tag app:v1")
        progress.log("failed: copy app:v2")
        progress.close()

    # Then the terminal shows a rich bar with items done of total, and only the failure; the pipe gets
    # every line and no bar
    shown = terminal.getvalue()
    assert "inventory" in shown
    assert "5/10" in shown
    assert "\u2501" in shown  # rich's bar glyph
    assert "failed: copy app:v2" in shown
    assert "done: tag" not in shown
    assert pipe.getvalue() == "done: tag app:v1\nfailed: copy app:v2\n"
