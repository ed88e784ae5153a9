"""An EventBridge event-pattern matcher for the tests, written from the user guide, not from moto.

"Comparison operators for use in event patterns"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html): a field's
filters are alternatives; exact values are case-sensitive; `prefix` and `suffix` take a string or
`{"equals-ignore-case": ...}`; `equals-ignore-case`; `wildcard` (case-sensitive, `*` any run, `\\*` and
`\\\\` literal); `anything-but` of a value, a list, or a prefix/suffix/equals-ignore-case/wildcard;
`exists`; `$or` of alternative sub-patterns. Fields of one object must all match. A filter other than
these (numeric, cidr) raises, so a test never passes on a filter this matcher does not know.
"""

from __future__ import annotations

import re
from typing import Any

MISSING = object()


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """True when `event` matches `pattern`."""
    for key, expected in pattern.items():
        if key == "$or":
            if not any(matches(alternative, event) for alternative in expected):
                return False
        elif isinstance(expected, dict):
            value = event.get(key)
            if not isinstance(value, dict) or not matches(expected, value):
                return False
        elif not _field_matches(expected, event.get(key, MISSING)):
            return False
    return True


def _field_matches(filters: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(_item_matches(item, each) for item in filters for each in values)


def _item_matches(item: Any, value: Any) -> bool:
    if not isinstance(item, dict):
        return value is not MISSING and type(item) is type(value) and item == value
    [(operator, operand)] = item.items()
    if operator == "exists":
        return (value is not MISSING) is operand
    if value is MISSING:
        return False
    if operator == "anything-but":
        return not _anything_but_excludes(operand, value)
    return _string_test(operator, operand, value)


def _anything_but_excludes(operand: Any, value: Any) -> bool:
    if isinstance(operand, dict):
        [(operator, inner)] = operand.items()
        return any(
            _string_test(operator, each, value) for each in (inner if isinstance(inner, list) else [inner])
        )
    return value in operand if isinstance(operand, list) else value == operand


def _string_test(operator: str, operand: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    ignore_case = isinstance(operand, dict)
    text = operand["equals-ignore-case"] if ignore_case else operand
    subject, text = (value.lower(), text.lower()) if ignore_case else (value, text)
    if operator == "prefix":
        return subject.startswith(text)
    if operator == "suffix":
        return subject.endswith(text)
    if operator == "equals-ignore-case":
        return value.lower() == operand.lower()
    if operator == "wildcard":
        return re.fullmatch(_wildcard_regex(operand), value, re.DOTALL) is not None
    raise NotImplementedError(f"filter {operator!r} is not implemented by the test matcher")


def _wildcard_regex(wildcard: str) -> str:
    parts, index = [], 0
    while index < len(wildcard):
        char = wildcard[index]
        if char == "\\":
            index += 1
            parts.append(re.escape(wildcard[index]))
        else:
            parts.append(".*" if char == "*" else re.escape(char))
        index += 1
    return "".join(parts)
