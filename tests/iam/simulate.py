"""IAM decisions from an evaluator independent of moto: `@cloud-copilot/iam-simulate` (`runSimulation`, Strict mode).

moto's policy matcher turns an ARN pattern into a regular expression, so a `.` in a policy's ARN matches any
character; this package matches ARNs as IAM does, evaluates every condition operator against the context
given (a condition on a key the context lacks does not hold), and applies resource policies (role trust
policies, KMS key policies, topic and queue policies) with IAM's same-account and cross-account rules.
It runs under Node (tests/iam/node, installed by `make setup`: `npm ci --prefix tests/iam/node`); one Node
process evaluates a whole batch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "simulate.mjs"
PACKAGE = NODE_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate"
ALLOWED = "Allowed"
NODE_TIMEOUT = 300


class EvaluatorMissing(RuntimeError):
    """Node or the evaluator package is not installed."""


@dataclass(frozen=True)
class Request:
    """One request to evaluate: who does what on which resource, with which policies in force.

    `statements`: the principal's identity-policy statements (none for a service principal);
    `resource_policy`: the resource's own policy statements (a role's trust policy, a key policy), or None.
    """

    principal: str
    action: str
    resource: str
    resource_account: str
    statements: tuple[dict[str, Any], ...] = ()
    resource_policy: tuple[dict[str, Any], ...] | None = None
    context: tuple[tuple[str, str], ...] = ()

    def simulation(self) -> dict[str, Any]:
        """The package's `Simulation` for this request."""
        simulation: dict[str, Any] = {
            "identityPolicies": (
                [
                    {
                        "name": "identity",
                        "policy": {"Version": "2012-10-17", "Statement": list(self.statements)},
                    }
                ]
                if self.statements
                else []
            ),
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
            "request": {
                "principal": self.principal,
                "action": self.action,
                "resource": {"resource": self.resource, "accountId": self.resource_account},
                "contextVariables": dict(self.context),
            },
        }
        if self.resource_policy is not None:
            simulation["resourcePolicy"] = {"Version": "2012-10-17", "Statement": list(self.resource_policy)}
        return simulation


@dataclass(frozen=True)
class Decision:
    """The evaluator's answer: `result` ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied") or `error`."""

    result: str | None
    error: str | None = None
    ignored: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        """True only for an Allowed decision."""
        return self.result == ALLOWED

    def describe(self) -> str:
        """The result, or why there is none."""
        return self.result or f"not evaluated: {self.error}"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not PACKAGE.is_dir():
        raise EvaluatorMissing(
            f"the IAM evaluator needs Node and {PACKAGE.relative_to(NODE_DIR.parent.parent.parent)}: "
            f"run `npm ci --prefix {NODE_DIR.relative_to(NODE_DIR.parent.parent.parent)}` (make setup does)"
        )
    return node


def evaluate(requests: list[Request]) -> list[Decision]:
    """A decision for each request, in order (one Node process for the batch)."""
    if not requests:
        return []
    process = subprocess.run(
        [_node(), str(SCRIPT)],
        input=json.dumps([r.simulation() for r in requests]),
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} failed ({process.returncode}): {process.stderr.strip()[-2000:]}")
    answers = json.loads(process.stdout)
    if len(answers) != len(requests):
        raise RuntimeError(f"{SCRIPT.name} answered {len(answers)} of {len(requests)} requests")
    return [Decision(a.get("result"), a.get("error"), tuple(a.get("ignored") or ())) for a in answers]
