"""Thin Powertools Lambda handlers for the replication state machine: parse -> one workflow call -> dump."""
