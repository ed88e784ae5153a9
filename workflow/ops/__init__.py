"""What operators run beside the state machine: the inventory of the source and the destinations
(`inventory`), backfill and reconciliation (`sync/`), where an image is (`status`), and manual execution
starts (`executions`).

May import: core/, registry/, engine/, models/, gates/, pipeline/.
"""
