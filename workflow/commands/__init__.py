"""`ecr-replicate` sub-commands: each module has `register(subparsers)` and sets `run(args) -> int`.

The `copy` sub-command is workflow.engine.copy (the copy job runs it from its asset alone).
May import: every package (the top, beside cli.py and local/).
"""
