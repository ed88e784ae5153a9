"""Every command, every bad input: one line on stderr (one JSON object with --json), the right exit code,
never a traceback (unless --debug)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from workflow.cli import main

ROOT = Path(__file__).parents[2]
EXAMPLE = str(ROOT / "examples" / "replication.yaml")
MACHINE = "arn:aws:states:us-east-1:111111111111:stateMachine:ecr-replication"
IMAGE = ["--repository", "app", "--tag", "release-1"]
REFS = ["reg.example.com/app:v1", "reg.example.com/app:v1"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Broken configs: missing, not UTF-8, not YAML, wrong types, an unquoted account id."""
    broken = {
        "not-utf8": b"source: {account: '\xff\xfe'}\n",
        "not-yaml": b"source: [unclosed\nrules: {\n",
        "wrong-types": b"source: 5\nrules: {name: x}\nmax_concurrency: many\n",
        "number-account": b"source: {account: 111111111111, region: us-east-1}\n"
        b"rules: [{name: x, tags: {include: [v1]}, destinations: [{account: '222222222222', regions: [eu-west-1]}]}]\n",
    }
    paths = {"missing": str(tmp_path / "absent.yaml")}
    for name, data in broken.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where boto3 finds no credentials anywhere."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name not in ("AWS_DEFAULT_REGION",):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str, *, contains: str) -> None:
    """stderr is exactly one line, holds `contains`, and no traceback."""
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.endswith("\n")
    assert contains in err


CONFIG_COMMANDS = {
    "validate": [],
    "plan": IMAGE,
    "pattern": [],
    "sync": ["--dry-run", "--local"],
    "status": ["app:release-1"],
}
CONFIG_PROBLEMS = {
    "missing": "cannot read",
    "not-utf8": "UTF-8",
    "not-yaml": "not valid YAML",
    "wrong-types": "source: Input should be",
    "number-account": "quote it",
}


@pytest.mark.parametrize("problem", sorted(CONFIG_PROBLEMS))
@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
def test_a_broken_config_is_one_line_and_exit_2(
    command: str, problem: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a command that reads a config, and a broken config
    # When it runs
    code, out, err = run([command, files[problem], *CONFIG_COMMANDS[command]], capsys)
    # Then exit 2, nothing on stdout, one line saying what is wrong
    assert code == 2
    assert out == ""
    assert err.startswith("error: invalid replication config: ")
    assert_one_line(err, contains=CONFIG_PROBLEMS[problem])


@pytest.mark.parametrize("problem", sorted(CONFIG_PROBLEMS))
@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
def test_a_broken_config_with_json_is_one_json_object(
    command: str, problem: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given --json When the config is broken Then stderr is one JSON object naming InvalidConfig
    code, out, err = run([command, files[problem], *CONFIG_COMMANDS[command], "--json"], capsys)
    assert code == 2
    assert out == ""
    assert_one_line(err, contains='"error": "InvalidConfig"')
    body = json.loads(err)
    assert CONFIG_PROBLEMS[problem] in body["message"]
    assert body["problems"]


BAD_FLAGS = {
    "no-command": [],
    "unknown-command": ["frobnicate"],
    "validate-no-config": ["validate"],
    "validate-unknown-flag": ["validate", EXAMPLE, "--frob"],
    "plan-no-tag": ["plan", EXAMPLE, "--repository", "app"],
    "plan-bad-destination": ["plan", EXAMPLE, *IMAGE, "--destination", "nonsense"],
    "pattern-extra-argument": ["pattern", EXAMPLE, "extra"],
    "schema-unknown-flag": ["schema", "--frob"],
    "copy-negative-blobs": ["copy", *REFS, "--max-parallel-blobs", "-3"],
    "copy-zero-blobs": ["copy", *REFS, "--max-parallel-blobs", "0"],
    "copy-text-blobs": ["copy", *REFS, "--max-parallel-blobs", "many"],
    "copy-unwritable-result": ["copy", *REFS, "--result-file", "/nonexistent-dir/result.json"],
    "copy-one-reference": ["copy", "reg.example.com/app:v1"],
    "sync-no-mode": ["sync", EXAMPLE],
    "sync-bad-since": ["sync", EXAMPLE, "--local", "--since", "yesterday"],
    "start-no-machine": ["start", *IMAGE],
    "start-bad-poll": ["start", "--state-machine-arn", MACHINE, *IMAGE, "--poll-seconds", "-1"],
    "demo-unknown-flag": ["demo", "--frob"],
    "status-no-image": ["status", EXAMPLE],
}


@pytest.mark.parametrize("name", sorted(BAD_FLAGS))
def test_bad_flags_are_argparse_one_liners_exit_2(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given arguments argparse refuses When the CLI runs Then exit 2 with one line (no usage dump)
    code, out, err = run(BAD_FLAGS[name], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ecr-replicate")
    assert_one_line(err, contains="--help")


def test_bad_flags_with_json_are_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["copy", *REFS, "--max-parallel-blobs", "-3", "--json"], capsys)
    assert code == 2
    assert json.loads(err) == {
        "error": "InvalidArguments",
        "message": "ecr-replicate copy: argument --max-parallel-blobs: '-3' is not a positive integer "
        "(see ecr-replicate copy --help)",
    }


def test_an_unwritable_result_file_is_refused_before_the_copy_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy engine that records whether it was called
    from workflow.engine import copy as copy_command

    called: list[str] = []
    monkeypatch.setattr(copy_command, "copy_image", lambda *a, **k: called.append("copy"))
    # When the result file cannot be written
    code, _, err = run(["copy", *REFS, "--result-file", "/nonexistent-dir/result.json"], capsys)
    # Then exit 2 naming the file, and nothing was copied
    assert code == 2
    assert_one_line(err, contains="cannot write '/nonexistent-dir/result.json'")
    assert called == []


BAD_REQUESTS = {
    "plan-destination-not-configured": (
        ["plan", EXAMPLE, *IMAGE, "--destination", "999999999999:eu-west-1"],
        2,
    ),
    "plan-bad-tag": (["plan", EXAMPLE, "--repository", "app", "--tag", "-bad"], 2),
    "start-not-an-arn": (["start", "--state-machine-arn", "nonsense", *IMAGE], 2),
    "copy-bad-reference": (["copy", "Bad Repo:tag", "reg.example.com/app:v1"], 2),
    "copy-port-out-of-range": (["copy", "127.0.0.1:70000/repo:tag", "reg.example.com/app:v1"], 2),
    "status-not-repository-tag": (["status", EXAMPLE, "app"], 2),
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_requests_are_one_line_exit_2(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, expected = BAD_REQUESTS[name]
    code, _, err = run(argv, capsys)
    assert code == expected
    assert_one_line(err, contains="error: ")


@pytest.mark.usefixtures("no_aws_credentials")
@pytest.mark.parametrize(
    "argv",
    [
        ["start", "--state-machine-arn", MACHINE, *IMAGE],
        ["sync", EXAMPLE, "--state-machine-arn", MACHINE, "--dry-run"],
        ["status", EXAMPLE, "app:release-1"],
    ],
    ids=["start", "sync", "status"],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_no_aws_credentials_is_one_line_exit_1(
    argv: list[str], as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no AWS credentials anywhere When a command needs AWS
    code, out, err = run([*argv, "--json"] if as_json else argv, capsys)
    # Then exit 1 with one line saying so (one JSON object with --json)
    assert code == 1
    assert out == ""
    assert_one_line(err, contains="no AWS credentials found")
    if as_json:
        assert json.loads(err)["error"] == "NoCredentials"


@pytest.mark.usefixtures("no_aws_credentials")
def test_an_unreachable_aws_endpoint_is_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given credentials but an AWS endpoint nothing listens on (loopback port 9), tried once
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # When starting a run
    code, _, err = run(["start", "--state-machine-arn", MACHINE, *IMAGE], capsys)
    # Then exit 1, one line naming the endpoint
    assert code == 1
    assert_one_line(err, contains="failed: EndpointConnectionError: ")
    assert "127.0.0.1:9" in err


def test_a_defect_is_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a command that hits an exception nobody defined
    from workflow.commands import validate

    def broken(path: str) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(validate, "load_config", broken)
    # When it runs without, then with --debug
    code, _, err = run(["validate", EXAMPLE], capsys)
    debug_code, _, debug_err = run(["validate", EXAMPLE, "--debug"], capsys)
    # Then one line naming it (exit 1), and the traceback only with --debug
    assert code == debug_code == 1
    assert_one_line(err, contains="failed: InternalError: unexpected ZeroDivisionError: division by zero")
    assert "Traceback" in debug_err
    assert debug_err.endswith(err)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_comes_from_the_package_metadata(flag: str) -> None:
    # Given the installed entry point When asked for its version
    from importlib.metadata import version

    completed = subprocess.run(
        [str(Path(sys.executable).with_name("ecr-replicate")), flag],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Then it prints the distribution's version (pyproject's) and exits 0
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"ecr-replicate {version('ecr-filtered-replication')}\n"


def test_the_console_script_reports_a_broken_config_in_one_line(files: dict[str, str]) -> None:
    # Given the real entry point (a fresh interpreter) When it reads a file that is not UTF-8
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("ecr-replicate")), "validate", files["not-utf8"]],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Then exit 2, one line, no traceback
    assert completed.returncode == 2
    assert_one_line(completed.stderr, contains="UTF-8")
