"""Backfill and reconciliation (`ecr-replicate sync`, the daily reconcile Lambda): the run (`syncer`), its
options (`options`), report (`report`) and actions (`actions`), the walk of the sources (`walk`), each image's
decision (`decisions`) under the promotion gates (`gating`), its execution starts (`executions`), the repairs
it makes itself (`repairs`) and stale tags (`deletes`).

May import: what ops/ may, and ops/ itself.
"""
