"""The CLI's JSON conventions, shared by every command's `--json`: snake_case keys, and one shape for a
destination: `{"account", "region", "repository"}` (plus what a command adds about it)."""

from __future__ import annotations

from typing import Any


def destination_dict(account: str, region: str, repository: str | None, **extra: Any) -> dict[str, Any]:
    """A destination as every `--json` names it."""
    return {"account": account, "region": region, "repository": repository, **extra}
