"""`ecr-replicate pattern CONFIG [--source ACCOUNT/REGION] [--json]`: the EventBridge event pattern compiled from
the rules (the home rule's, or with `--source` that source's forwarding rule's), whether it is exact or widened
(what, and why), and how it stands against EventBridge's limits."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workflow.core.commandline import add_command, add_json_argument
from workflow.core.exceptions import InvalidRequest
from workflow.models.config import load_config
from workflow.pipeline.event_filters import WILDCARD_COMPLEXITY_MAX
from workflow.pipeline.plan import (
    EVENT_PATTERN_MAX_CHARACTERS,
    CompiledPattern,
    compile_event_pattern,
    pattern_text,
)

EXACT = "exact: a push starts an execution only when a rule accepts it"
WIDENED = "widened: some pushes no rule accepts start an execution, which ends SKIPPED with the reason"


def register(subparsers: Any) -> None:
    """Add the `pattern` sub-command."""
    parser = add_command(
        subparsers,
        "pattern",
        summary="print the EventBridge event pattern compiled from the rules, and where it accepts more",
        description="Say whether the event pattern the source stack's EventBridge rule gets from the rules is "
        "exact or widened (what, and why), its length against EventBridge's 2,048 characters and its wildcard "
        "complexity, then print it as compact JSON (the last line).",
        examples=["ecr-replicate pattern replication.yaml", "ecr-replicate pattern replication.yaml --json"],
    )
    parser.add_argument("config", help="replication config (YAML or JSON)")
    parser.add_argument(
        "--source", metavar="ACCOUNT/REGION", help="the forwarding rule's pattern of this (non-home) source"
    )
    add_json_argument(parser, "the pattern, its length and complexity, and what was widened")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the report, then the pattern as the compact JSON whose length EventBridge limits."""
    config = load_config(args.config)
    source = None
    if args.source is not None:
        source = next((s for s in config.sources if s.name == args.source), None)
        if source is None:
            names = ", ".join(s.name for s in config.sources)
            raise InvalidRequest(f"--source {args.source!r} is not one of the sources ({names})")
    compiled = compile_event_pattern(config, source)
    if args.json:
        print(json.dumps(report(compiled), indent=2))
        return 0
    print(EXACT if compiled.exact else WIDENED)
    for widening in compiled.widened:
        rules = f" (rule {', '.join(widening.rules)})" if widening.rules else ""
        what = f"{widening.field} '{widening.pattern}'" if widening.pattern else widening.field
        print(f"  {what}{rules}: {widening.reason}; accepts {widening.accepts}")
    print(f"length: {compiled.length:,} of {EVENT_PATTERN_MAX_CHARACTERS:,} characters")
    complexity = ", ".join(f"{field} {value}" for field, value in compiled.wildcard_complexity().items())
    print(f"wildcard complexity: {complexity} (EventBridge refuses a field over {WILDCARD_COMPLEXITY_MAX})")
    print(pattern_text(compiled.pattern))
    return 0


def report(compiled: CompiledPattern) -> dict[str, Any]:
    """The `--json` form, snake_case keys."""
    return {
        "exact": compiled.exact,
        "widened": [widening.to_json() for widening in compiled.widened],
        "length": compiled.length,
        "max_length": EVENT_PATTERN_MAX_CHARACTERS,
        "wildcard_complexity": {
            field.replace("-", "_"): value for field, value in compiled.wildcard_complexity().items()
        },
        "max_wildcard_complexity": WILDCARD_COMPLEXITY_MAX,
        "pattern": compiled.pattern,
    }
