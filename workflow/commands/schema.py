"""`ecr-replicate schema`: the JSON Schema of the replication config, generated from its pydantic model.

The committed copy is schema/replication.schema.json (a test keeps it equal to this output); editors use it
through a `# yaml-language-server: $schema=...` line at the top of replication.yaml.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a replication config."""
    from workflow.models.config import ReplicationConfig  # deferred: pydantic only for this command

    schema = ReplicationConfig.model_json_schema(mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "ecr-filtered-replication config (replication.yaml)",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def register(subparsers: Any) -> None:
    """Add the `schema` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "schema", help="print the JSON Schema of the replication config (for editors and CI)"
    )
    parser.add_argument("--json", action="store_true", help="accepted for symmetry: the schema is JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the schema."""
    print(json.dumps(config_schema(), indent=2))
    return 0
