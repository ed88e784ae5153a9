"""Is an action on a resource allowed by a list of policy statements? moto's IAM matcher, plus conditions.

moto's `IAMPolicyStatement` matches Action/NotAction and Resource patterns and Effect. Conditions are
checked here against the context the call is known to have (`MODELED_KEYS`): a condition on a modeled
key must hold, one on any other key cannot contradict the call and counts as holding.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

MODELED_KEYS = {
    "aws:principalarn",
    "sts:externalid",
    "aws:principalaccount",
    "aws:requestedregion",
    "kms:viaservice",
}


def _values(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _matches(operator: str, expected: list[str], actual: str) -> bool:
    base = operator.removesuffix("IfExists")
    if base in ("StringEquals", "ArnEquals"):
        return actual in expected
    if base in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, pattern) for pattern in expected)
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in [e.lower() for e in expected]
    raise ValueError(f"condition operator {operator} on a modeled key is not supported by this test")


def conditions_hold(condition: dict[str, Any] | None, context: dict[str, str]) -> bool:
    """Whether a statement's Condition block can hold for a call with `context`."""
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, keys in (condition or {}).items():
        for key, expected in keys.items():
            if key.lower() not in MODELED_KEYS:
                continue  # not known for this call: it cannot contradict it
            actual = lowered.get(key.lower())
            if actual is None:
                if not operator.endswith("IfExists"):
                    return False
                continue
            if not _matches(operator, _values(expected), actual):
                return False
    return True


def _statement_applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    bare = {k: v for k, v in statement.items() if k != "Condition"}
    bare["Effect"] = "Allow"
    # IAM's `?` matches one character (a secret's `name-??????`); moto's matcher turns only `*` into a regex
    # (`.*`) and would read `?` as a quantifier, so it gets `.`, one character, here.
    for key in ("Resource", "NotResource"):
        if key in bare:
            bare[key] = [str(r).replace("?", ".") for r in _values(bare[key])]
    return IAMPolicyStatement(bare).is_action_permitted(action, resource) == PermissionResult.PERMITTED


def is_allowed(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str]) -> bool:
    """True when an Allow applies (conditions holding) and no Deny does."""
    allowed = False
    for statement in statements:
        if not _statement_applies(statement, action, resource):
            continue
        if not conditions_hold(statement.get("Condition"), context):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def trusts(statements: list[dict[str, Any]], caller_account: str, context: dict[str, str]) -> bool:
    """Whether a trust policy lets a role of `caller_account` (described by `context`) call sts:AssumeRole."""
    for statement in statements:
        if statement.get("Effect") != "Allow" or "sts:AssumeRole" not in _values(statement.get("Action")):
            continue
        principals = _values((statement.get("Principal") or {}).get("AWS", []))
        caller = context.get("aws:PrincipalArn", "")
        if not any(p in (f"arn:aws:iam::{caller_account}:root", caller_account, caller) for p in principals):
            continue
        if conditions_hold(statement.get("Condition"), context):
            return True
    return False
