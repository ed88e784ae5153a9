"""Test-only: botocore's JSON models (endpoints, partitions, each service's model and rules) parsed once per
process instead of once per session.

botocore caches what a session's loader parsed in that loader, so every new session parses its files again:
endpoints.json alone is 1.2 MB, parsed into OrderedDicts in pure Python. The code under test makes a session
for each registry client, assumed role and handler invocation, and in the tests those sessions all run in a
few processes, where the parsing was a fifth of the e2e suite's CPU time. Sharing the parsed files keeps
botocore's own assumption (within a session, every client already gets the same parsed objects) across
sessions; what a session or client does with them is unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore import loaders

_parsed: dict[str, Any] = {}
_lock = threading.Lock()


def share() -> None:
    """Parse each JSON model file once in this process (idempotent)."""
    load_file = loaders.JSONFileLoader.load_file
    if getattr(load_file, "shared", False):
        return

    def shared_load_file(self: loaders.JSONFileLoader, file_path: str) -> Any:
        with _lock:
            if file_path in _parsed:
                return _parsed[file_path]
        data = load_file(self, file_path)
        with _lock:
            return _parsed.setdefault(file_path, data)

    shared_load_file.shared = True  # type: ignore[attr-defined]
    loaders.JSONFileLoader.load_file = shared_load_file  # type: ignore[method-assign]
