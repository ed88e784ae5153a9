"""`copy` to or from a plain-HTTP registry without --insecure-registry fails at once, naming the flag."""

from __future__ import annotations

import time

import pytest

from tests.integration.registries import RegistryServer
from workflow.cli import main

pytestmark = pytest.mark.integration


def test_a_plain_http_registry_without_the_flag_fails_fast_naming_it(
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a registry that serves plain HTTP, not named with --insecure-registry
    started = time.monotonic()
    # When copying from it
    code = main(
        [
            "copy",
            f"{source_registry.host}/{repo}:v1",
            f"{dest_registry.host}/{repo}:v1",
            "--insecure-registry",
            dest_registry.host,
        ]
    )
    elapsed = time.monotonic() - started
    # Then exit 1 within a second or so (no retries: the 5 attempts took 5.5 s), one line naming the flag
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("failed: RegistryProtocolError: ")
    assert source_registry.host in err
    assert "--insecure-registry HOST:PORT" in err
    assert elapsed < 2.5
