"""The data the workflow is configured with and hands between its states (pydantic models): the replication
config (`config`), repository and tag rules (`rules`), a rule's promotion gate policy (`policy`), and the
states' payloads (`payloads`: requests, targets, copy results, records, the plan), and how the other sources'
events reach the home one (`forwarding`: their rules' ARNs, the home bus policy).

May import: core/, registry/, engine/.
"""
