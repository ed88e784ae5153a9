"""The runbook (docs/runbook.md): the error names the product can record, and each one's section link."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator, Mapping
from typing import Any

from workflow.core import exceptions

RUNBOOK = "docs/runbook.md"
CATCH_ALL = "States.ALL"
# What a States.ALL catcher on a Task records beyond the names the ASL spells out: the Step Functions
# developer guide, "Handling errors in Step Functions workflows" (States.TaskFailed, States.Timeout,
# States.Permissions) and "Handle Lambda service exceptions" (unhandled Lambda errors, timeouts and
# out-of-memory included, are Lambda.Unknown).
TASK_ERRORS = ("States.TaskFailed", "States.Timeout", "States.Permissions", "Lambda.Unknown")


def anchor(name: str) -> str:
    """The section's anchor, as GitHub renders the heading `## <name>`: `States.Timeout` -> `statestimeout`."""
    return re.sub(r"[^a-z0-9 _-]", "", name.lower()).replace(" ", "-")


def section_url(name: str, base: str | None = None) -> str:
    """The link to an error's section under `base` (the runbook's URL; default its path in the repository)."""
    return f"{base or RUNBOOK}#{anchor(name)}"


def exception_names() -> set[str]:
    """Every error class of workflow.core.exceptions: each is an error name a state can record."""
    return {
        name
        for name, value in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(value, exceptions.ReplicationError)
    }


def _states(states: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for state in states.values():
        yield state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor["States"])
        for branch in state.get("Branches") or ():
            yield from _states(branch["States"])


def _literal_errors(value: Any) -> Iterator[str]:
    """`"error": "Name"` / `"Error": "Name"` literals anywhere in a state's Parameters."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("error", "Error") and isinstance(item, str):
                yield item
            else:
                yield from _literal_errors(item)
    elif isinstance(value, list):
        for item in value:
            yield from _literal_errors(item)


def asl_error_names(definition: Mapping[str, Any]) -> set[str]:
    """Every error name a state machine definition can record or fail with.

    The names in Retry/Catch ErrorEquals (but the wildcard), the literal `Error`s of Fail states and of
    records built by Pass states, and TASK_ERRORS when a Task catches States.ALL.
    """
    names: set[str] = set()
    for state in _states(definition["States"]):
        for handler in [*state.get("Retry", ()), *state.get("Catch", ())]:
            names.update(handler["ErrorEquals"])
        if state["Type"] == "Task" and any(
            CATCH_ALL in catcher["ErrorEquals"] for catcher in state.get("Catch", ())
        ):
            names.update(TASK_ERRORS)
        if state["Type"] == "Fail" and "Error" in state:
            names.add(state["Error"])
        names.update(_literal_errors(state.get("Parameters")))
    names.discard(CATCH_ALL)
    return names


def recordable_error_names(definition: Mapping[str, Any]) -> set[str]:
    """The product's exceptions and the definition's error names: each needs a runbook section."""
    return exception_names() | asl_error_names(definition)
