"""The two stacks: EcrReplicationSource and EcrReplicationDestination-<account>."""
