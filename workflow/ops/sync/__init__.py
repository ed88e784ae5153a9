"""Backfill and reconciliation (`ecr-replicate sync`, the daily reconcile Lambda): the run (`syncer`), its
options (`options`) and actions (`actions`), its execution starts (`executions`), the repairs it makes itself
(`repairs`) and stale tags (`deletes`).

May import: what ops/ may, and ops/ itself.
"""
