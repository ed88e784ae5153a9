"""The Lambda functions' timeouts, and the registry time each may spend inside one invocation.

infra/constructs set each function's timeout from FUNCTION_TIMEOUTS; the local runtime gives its stand-in
functions the same ones and ends an invocation that overruns with `Sandbox.Timedout`, as Lambda does
(workflow/local/bridges.py). A handler that reads registries bounds that work by the time its invocation has
left (`workflow.registry.deadline.invocation_bounds`); the infrastructure tests check that each timeout holds
the registry budget of its function (`registry_budget`) with the reserve kept.
"""

from __future__ import annotations

from workflow.registry.deadline import LAMBDA_EXCHANGE, Bounds
from workflow.registry.retry import RetryPolicy

# Seconds, by function (the module name of its handler under lambdas/).
FUNCTION_TIMEOUTS = {
    "plan": 30,
    "gate": 180,
    "precheck": 180,
    "record": 30,
    "summarize": 30,
    "reconcile": 900,
}
# The seconds one registry exchange may take in the functions that read registries: Precheck and Gate bound
# their clients by `invocation_bounds`; the reconcile function's clients keep the default bounds.
REGISTRY_EXCHANGE = {"gate": LAMBDA_EXCHANGE, "precheck": LAMBDA_EXCHANGE, "reconcile": Bounds().exchange}


def registry_budget(exchange: float, policy: RetryPolicy | None = None) -> float:
    """Seconds one registry operation may take with every retry: each attempt's exchange bound, and the
    longest backoff before each retry (a longer Retry-After is cut by the deadline, as RegistryTimeout)."""
    policy = policy or RetryPolicy()
    backoff = sum(min(policy.max_delay, policy.base_delay * 2 ** (n - 1)) for n in range(1, policy.attempts))
    return policy.attempts * exchange + backoff
