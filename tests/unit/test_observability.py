"""The handlers' config: validated once per warm container, again when the file changes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from lambdas.observability import load_handler_config
from tests.unit.conftest import replication_config


def test_config_is_loaded_once_and_again_after_a_change(config_file: Callable[..., Path]) -> None:
    # Given the packaged config
    path = config_file()
    first = load_handler_config()
    # When it is asked for again, unchanged / Then the same validated object comes back
    assert load_handler_config() is first
    # When the file changes (another concurrency) / Then the new content is loaded
    config_file(replication_config(max_concurrency=7))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_handler_config().max_concurrency == 7
    assert first.max_concurrency != 7
