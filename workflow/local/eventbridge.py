"""EventBridge's PutRule as AWS enforces it, which moto (5.2.5) does not: moto stores any JSON pattern.

`strict_rules()` makes moto's PutRule refuse, with InvalidEventPatternException, the patterns AWS refuses,
so a pattern-compiler regression fails the local runtime, the demo and the e2e tests at start-up:

- a pattern over 2,048 characters (EventBridge quotas, "Event pattern size",
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html). AWS does not document which
  error code the quota raises; the local runtime only needs the refusal;
- a `wildcard` value with consecutive `*`, or a backslash escaping anything but `*` and `\\`, with
  event-ruler's message (event-ruler README, "Wildcard matching"; WildcardParser);
- wildcards too complex: "Rule is too complex" (EventBridge user guide, "Comparison operators for use in
  event patterns", "Wildcards and event pattern complexity"). The measure is event-ruler's
  MachineComplexityEvaluator: the most wildcard-pattern prefixes one (quoted) value can match at once.
  event-ruler measures it per field machine; here it is measured over all of a field's wildcard filters
  in the pattern, which is never less, so what passes here passes there.

This is written apart from the compiler's own bound (workflow/pipeline/event_filters.py), so that one cannot hide
a mistake in the other.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.events.exceptions import InvalidEventPatternException
from moto.events.models import EventsBackend

from workflow.pipeline.event_filters import WILDCARD_COMPLEXITY_MAX
from workflow.pipeline.plan import EVENT_PATTERN_MAX_CHARACTERS

ANY_BYTE = None  # a `*` token
MAX_EXPLORED = 100_000  # value states explored before a field is called too complex to evaluate


def pattern_refusal(text: str) -> str | None:
    """Why EventBridge refuses the event pattern `text` (moto checks the JSON itself), or None."""
    if len(text) > EVENT_PATTERN_MAX_CHARACTERS:
        return f"Event pattern is {len(text):,} characters, over the {EVENT_PATTERN_MAX_CHARACTERS:,} quota"
    wildcards: dict[str, list[str]] = {}
    _collect(json.loads(text), "", wildcards)
    for path, values in wildcards.items():
        for value in values:
            problem = wildcard_problem(value)
            if problem:
                return problem
        complexity = wildcard_complexity(values)
        if complexity > WILDCARD_COMPLEXITY_MAX:
            return f"Rule is too complex: wildcard complexity over {WILDCARD_COMPLEXITY_MAX} on {path}"
    return None


def _collect(node: Any, path: str, wildcards: dict[str, list[str]]) -> None:
    """Every wildcard value (also under anything-but) per field path, $or alternatives included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$or":
                for alternative in value:
                    _collect(alternative, path, wildcards)
            elif isinstance(value, list):
                wildcards.setdefault(f"{path}{key}", []).extend(_wildcard_values(value))
            else:
                _collect(value, f"{path}{key}.", wildcards)


def _wildcard_values(filters: list[Any]) -> list[str]:
    values: list[str] = []
    for item in filters:
        if not isinstance(item, dict):
            continue
        operand = item.get("anything-but", item)
        wildcard = operand.get("wildcard") if isinstance(operand, dict) else None
        values.extend(wildcard if isinstance(wildcard, list) else [wildcard] if wildcard is not None else [])
    return values


def wildcard_problem(value: str) -> str | None:
    """event-ruler's WildcardParser refusal of a wildcard value (positions count the opening quote)."""
    quoted = f'"{value}"'.encode()
    index = 0
    while index < len(quoted):
        byte = quoted[index : index + 1]
        if byte == b"*" and quoted[index + 1 : index + 2] == b"*":
            return f"Consecutive wildcard characters at pos {index}"
        if byte == b"\\":
            if quoted[index + 1 : index + 2] not in (b"*", b"\\"):
                return f"Invalid escape character at pos {index}"
            index += 1
        index += 1
    return None


def _tokens(value: str, quote: bool) -> list[int | None]:
    """The (quoted) value as bytes, `*` as ANY_BYTE and escapes resolved."""
    quoted, index = (f'"{value}"' if quote else value).encode(), 0
    tokens: list[int | None] = []
    while index < len(quoted):
        if quoted[index] == ord("\\"):
            index += 1
            tokens.append(quoted[index])
        else:
            tokens.append(ANY_BYTE if quoted[index] == ord("*") else quoted[index])
        index += 1
    return tokens


def wildcard_complexity(values: list[str], quote: bool = True) -> int:
    """The most prefixes of the (distinct) wildcard values that one input can match at once.

    EventBridge matches a string inside its JSON quotes, so the values are measured quoted; `quote=False`
    measures them bare, as event-ruler's own MachineComplexityEvaluatorTest does. A walk over the sets of
    prefixes an input can match (one set per value), over every byte the values name plus one they do not.
    Past WILDCARD_COMPLEXITY_MAX it stops and answers the first count over it (or one over it, after
    MAX_EXPLORED sets): exact up to the bound, "over" beyond.
    """
    patterns = [_tokens(value, quote) for value in dict.fromkeys(values)]
    alphabet = {t for tokens in patterns for t in tokens if t is not ANY_BYTE} | {-1}
    start = tuple(_closure(tokens, {0}) for tokens in patterns)
    seen, pending, most = {start}, [start], 0
    while pending:
        current = pending.pop()
        for byte in alphabet:
            following = tuple(
                _closure(tokens, _advance(tokens, states, byte))
                for tokens, states in zip(patterns, current, strict=True)
            )
            most = max(most, sum(len(states - {0}) for states in following))
            if most > WILDCARD_COMPLEXITY_MAX:
                return most
            if following not in seen:
                if len(seen) >= MAX_EXPLORED:
                    return WILDCARD_COMPLEXITY_MAX + 1
                seen.add(following)
                pending.append(following)
    return most


def _advance(tokens: list[int | None], states: frozenset[int], byte: int) -> set[int]:
    """Prefix lengths matching after one more byte: a prefix ending in `*` keeps matching."""
    following = set()
    for state in states:
        if state and tokens[state - 1] is ANY_BYTE:
            following.add(state)
        if state < len(tokens) and tokens[state] is not ANY_BYTE and tokens[state] == byte:
            following.add(state + 1)
    return following


def _closure(tokens: list[int | None], states: set[int]) -> frozenset[int]:
    """Add the prefixes that extend a matching one by `*` (which matches the empty string)."""
    closed = set(states)
    for state in states:
        while state < len(tokens) and tokens[state] is ANY_BYTE:
            state += 1
            closed.add(state)
    return frozenset(closed)


@contextlib.contextmanager
def strict_rules() -> Iterator[None]:
    """Make moto's PutRule refuse what EventBridge refuses while the context lasts."""
    put_rule = EventsBackend.put_rule

    def checked_put_rule(backend: EventsBackend, name: str, *args: Any, **kwargs: Any) -> Any:
        pattern = kwargs.get("event_pattern")
        refusal = pattern_refusal(pattern) if pattern else None
        if refusal:
            raise InvalidEventPatternException(reason=refusal)
        return put_rule(backend, name, *args, **kwargs)

    with mock.patch.object(EventsBackend, "put_rule", checked_put_rule):
        yield
