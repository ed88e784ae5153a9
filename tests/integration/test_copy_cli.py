"""`ecr-replicate copy` end to end against real registries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.images import ImageBuilder
from tests.integration.registries import PASSWORD, RegistryServer, skopeo_digest
from workflow.cli import main

pytestmark = pytest.mark.integration


def test_cli_copies_and_prints_the_result(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    basic_registry: RegistryServer,
    repo: str,
    registry_auth: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a multi-arch image and a basic-auth destination
    pushed = builder.index(repo, "v3")
    result_file = tmp_path / "result.json"
    # When the CLI copies it
    code = main(
        [
            "copy",
            f"{source_registry.host}/{repo}:v3",
            f"{basic_registry.host}/{repo}:v3",
            "--insecure-registry",
            source_registry.host,
            "--insecure-registry",
            basic_registry.host,
            "--result-file",
            str(result_file),
        ]
    )
    out, err = capsys.readouterr()
    # Then it exits 0, prints the CopyResult on stdout and in the file, progress on stderr, no password
    assert code == 0
    printed = json.loads(out)
    assert printed == json.loads(result_file.read_text())
    assert (printed["action"], printed["source_digest"]) == ("copied", pushed.digest)
    assert "blob sha256:" in err
    assert "copied" in err
    assert PASSWORD not in out + err
    assert skopeo_digest(f"{basic_registry.host}/{repo}:v3", basic_registry) == pushed.digest


@pytest.mark.parametrize(
    "argv",
    [
        ["copy", "Bad Repo:tag", "127.0.0.1:1/x:y"],
        ["copy", "127.0.0.1:1/x:y", "127.0.0.1:1/x:-bad"],
        ["copy", "127.0.0.1:1/x:y", "127.0.0.1:1/x:y", "--dst-role-arn", "not-an-arn"],
        ["copy", "127.0.0.1:1/x:y", "127.0.0.1:1/x:y", "--insecure-registry", "a b"],
        ["copy", "127.0.0.1:1/x:y", "127.0.0.1:1/x:y@sha256:" + "0" * 64],
    ],
    ids=["bad-source", "bad-tag", "bad-role", "bad-insecure", "tag-and-digest-destination"],
)
def test_cli_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given malformed arguments, When the CLI runs, Then it exits 2 with a one-line reason
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_cli_failed_copy_exits_1_and_writes_the_error_to_the_result_file(
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a source tag that does not exist and a result file (as the copy job passes)
    result_file = tmp_path / "result.json"
    # When the CLI copies it
    code = main(
        [
            "copy",
            f"{source_registry.host}/{repo}:missing",
            f"{dest_registry.host}/{repo}:missing",
            "--insecure-registry",
            source_registry.host,
            "--insecure-registry",
            dest_registry.host,
            "--result-file",
            str(result_file),
        ]
    )
    # Then exit 1 with one line naming ImageNotFound, and the result file names the error for the summary
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err.startswith("failed: ImageNotFound:")
    assert err.count("\n") == 1
    result = json.loads(result_file.read_text())
    assert result["error"] == "ImageNotFound"
    assert f"{repo}:missing" in result["message"]


def test_cli_bad_arguments_write_the_error_to_the_result_file(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    code = main(["copy", "Bad Repo:tag", "127.0.0.1:1/x:y", "--result-file", str(result_file)])
    assert code == 2
    assert json.loads(result_file.read_text())["error"] == "InvalidReference"


def test_cli_refuses_to_replace_a_tag_at_another_digest_when_told(
    builder: ImageBuilder,
    builder_for: Any,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the destination tag v1 already pointing at another image than the source's v1
    pushed = builder.image(repo, "v1")
    earlier = builder_for(dest_registry).image(repo, "v1")
    result_file = tmp_path / "result.json"
    # When the copy job's command runs with --on-tag-conflict refuse
    code = main(
        [
            "copy",
            f"{source_registry.host}/{repo}:v1",
            f"{dest_registry.host}/{repo}:v1",
            "--insecure-registry",
            source_registry.host,
            "--insecure-registry",
            dest_registry.host,
            "--on-tag-conflict",
            "refuse",
            "--result-file",
            str(result_file),
        ]
    )
    # Then it fails with DestinationTagConflict (in the result the state machine reads), naming both digests
    assert code == 1
    result = json.loads(result_file.read_text())
    assert result["error"] == "DestinationTagConflict"
    assert earlier.digest in result["message"]
    assert pushed.digest in result["message"]
    assert "DestinationTagConflict" in capsys.readouterr().err
    # and the destination keeps its image
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1", dest_registry) == earlier.digest
