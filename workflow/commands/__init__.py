"""`ecr-replicate` sub-commands: each module has `register(subparsers)` and sets `run(args) -> int`."""
