"""CDK app: the source stack (workflow) and the destination-role stack, driven by replication.yaml."""
