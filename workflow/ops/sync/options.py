"""What one sync run is asked to do: the options `sync()`, its execution starts and its callers share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SyncOptions:
    """What to sync and how. Exactly one of `state_machine_arn` and `local`."""

    state_machine_arn: str | None = None
    local: bool = False
    repository_glob: str | None = None
    # Only this source (`account/region`); default: every source of the config.
    source: str | None = None
    since: datetime | None = None
    dry_run: bool = False
    # Remove stale tags (rules with propagate_deletes; reported either way).
    apply_deletes: bool = False
    max_in_flight: int = 10
    wait: bool = True
    poll_initial: float = 2.0
    poll_max: float = 30.0
    # Run as one of the config's operators: destinations are read through their read-only role, and every
    # write (a missing tag, a stale tag's delete) is left to an execution, which writes as the workflow.
    as_operator: bool = False
