"""Test-only: botocore's JSON models (endpoints, partitions, each service's model and rules) parsed, and its data
folders listed, once per process instead of once per session.

botocore caches what a session's loader parsed or listed in that loader, so every new session parses its files
again (endpoints.json alone is 1.2 MB, parsed into OrderedDicts in pure Python) and lists the 400 service
folders again before its first client. The code under test makes a session for each registry client, assumed
role and handler invocation, and in the tests those sessions all run in a few processes, where this was a fifth
of the e2e suite's CPU time and more of the unit suite's. Sharing the results keeps botocore's own assumption
(within a session, every client already gets the same parsed objects) across sessions; what a session or client
does with them is unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore import loaders

_parsed: dict[str, Any] = {}
_listed: dict[tuple[tuple[str, ...], str], list[str]] = {}
_lock = threading.Lock()


def share() -> None:
    """Parse each JSON model file, and list each kind of model, once in this process (idempotent)."""
    load_file = loaders.JSONFileLoader.load_file
    list_services = loaders.Loader.list_available_services
    if getattr(load_file, "shared", False):
        return

    def shared_load_file(self: loaders.JSONFileLoader, file_path: str) -> Any:
        with _lock:
            if file_path in _parsed:
                return _parsed[file_path]
        data = load_file(self, file_path)
        with _lock:
            return _parsed.setdefault(file_path, data)

    def shared_list_services(self: loaders.Loader, type_name: str) -> list[str]:
        key = (tuple(self.search_paths), type_name)
        with _lock:
            if key in _listed:
                return list(_listed[key])
        found = list_services(self, type_name)
        with _lock:
            return list(_listed.setdefault(key, list(found)))

    shared_load_file.shared = True  # type: ignore[attr-defined]
    loaders.JSONFileLoader.load_file = shared_load_file  # type: ignore[method-assign]
    loaders.Loader.list_available_services = shared_list_services  # type: ignore[method-assign]
