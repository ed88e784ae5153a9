"""Test-only: moto's Step Functions interpreter parses a state machine's definition once per process and
task-service factory, not once per execution.

Its parser is ANTLR's pure-Python runtime: 0.1 to 0.2 s of CPU for statemachine.asl.json, at every
CreateStateMachine and every execution, about 15% of an e2e process's CPU. The parsed program is shared the way
the definition is: its components keep what an execution changes (retry attempts, Map and Parallel workers, the
stack) in that execution's Environment, and only their heap keys (the names of their slots in an execution's
heap) are drawn lazily on themselves; they are drawn here, once, before any execution shares the program. The
parser builds each Task state's service through `state_task_service_for`, which a local runtime replaces with one
holding its own CodeBuild bridge (workflow/local/bridges.py): a program is shared only under the factory it was
parsed with, so a runtime started later never runs builds with an earlier one's settings.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

_parsed: dict[tuple[str, Any], tuple[Any, Any]] = {}
_lock = threading.Lock()


def share() -> None:
    """Parse each definition once in this process (idempotent); an invalid one raises at every parse, as before."""
    parse = AmazonStateLanguageParser.__dict__["parse"].__func__
    if getattr(parse, "shared", False):
        return

    def shared_parse(definition: str) -> tuple[Any, Any]:
        key = (definition, state_task_factory.state_task_service_for)
        with _lock:
            if key in _parsed:
                return _parsed[key]
        program, tree = parse(definition)
        _draw_heap_keys(program, set())
        with _lock:
            return _parsed.setdefault(key, (program, tree))

    shared_parse.shared = True  # type: ignore[attr-defined]
    AmazonStateLanguageParser.parse = staticmethod(shared_parse)  # type: ignore[method-assign,assignment]


def _draw_heap_keys(component: Component, seen: set[int]) -> None:
    """Give every component of the program its heap key now (drawn on first use otherwise, by whichever
    execution gets there first)."""
    if id(component) in seen:
        return
    seen.add(id(component))
    if isinstance(component, EvalComponent):
        _ = component.heap_key
    for value in vars(component).values():
        children = (
            value.values()
            if isinstance(value, dict)
            else value
            if isinstance(value, list | tuple)
            else [value]
        )
        for child in children:
            if isinstance(child, Component):
                _draw_heap_keys(child, seen)
