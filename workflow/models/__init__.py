"""The data the workflow is configured with and hands between its states (pydantic models): the replication
config (`config`: the whole, read and reported; `config_parts`: its sources, rules, destinations and the
rest; `config_checks`: the checks across them), repository and tag rules (`rules`), a rule's promotion gate
policy (`policy`), and the states' payloads (`payloads`: requests, targets, copy results, records, the plan),
and how the other sources' events reach the home one (`forwarding`: their rules' ARNs, the home bus policy).

May import: core/, registry/, engine/.
"""
