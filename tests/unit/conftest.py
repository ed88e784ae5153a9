"""Shared fixtures of the unit tests: a Lambda context, a packaged config file, the handlers' logs (moto as AWS,
`aws`, is tests/conftest.py's)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.fake_ecr import ecr_tag_immutability  # noqa: F401 - a fixture for every unit test

SOURCE = {"account": "111111111111", "region": "us-east-1"}


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes Powertools reads from the Lambda context."""

    function_name: str = "ecr-replication-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:111111111111:function:ecr-replication-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_ms: int = 180_000

    def get_remaining_time_in_millis(self) -> int:
        """The time the invocation has left (a fixed amount: these tests do not run out of time)."""
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A Lambda context object as the runtime passes it."""
    return FakeLambdaContext()


def replication_config(**overrides: Any) -> dict[str, Any]:
    """A small valid config: rule `releases` (app, release-*) to 222222222222 in two Regions."""
    config: dict[str, Any] = {
        "source": SOURCE,
        "rules": [
            {
                "name": "releases",
                "repositories": ["app"],
                "tags": {"include": ["release-*"], "exclude": ["*-rc*"]},
                "destinations": [{"account": "222222222222", "regions": ["eu-west-1", "us-west-2"]}],
                "create_repository": {"tag_mutability": "IMMUTABLE", "scan_on_push": True},
            }
        ],
        "notifications": {"emails": ["oncall@example.com"], "on": "failure"},
    }
    config.update(overrides)
    return config


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a config (default: `replication_config()`) and point REPLICATION_CONFIG_FILE at it."""

    def write(config: dict[str, Any] | None = None) -> Path:
        path = tmp_path / "replication.yaml"
        path.write_text(yaml.safe_dump(config or replication_config()), encoding="utf-8")
        monkeypatch.setenv("REPLICATION_CONFIG_FILE", str(path))
        return path

    return write


@pytest.fixture
def handler_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The handlers' structured log records (Powertools writes JSON lines to its own stream)."""
    from lambdas.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    finally:
        handler.setStream(previous)
