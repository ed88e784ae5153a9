"""EventBridge filters for the rules' patterns, and the limits EventBridge puts on them.

What EventBridge can say ("Comparison operators for use in event patterns",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html): exact values
(case-sensitive), `prefix` and `suffix` (each also `{"equals-ignore-case": ...}`), `equals-ignore-case`, and
`wildcard`, which is case-sensitive. A glob becomes the filter that says exactly what it says where one
exists; otherwise (a `re:` pattern, a `semver:` range, a case-insensitive glob with a `*` inside) the filter
accepts more, and a Widening says what and why. The Plan function applies the exact rules either way.

Wildcard matching is AWS's event-ruler (https://github.com/aws/event-ruler): a `wildcard` value may not hold
consecutive `*`, and `\\` escapes only `*` and `\\` (README, "Wildcard matching"). A rule whose wildcards are
too complex is refused, InvalidEventPatternException "Rule is too complex" (same user guide page, "Wildcards
and event pattern complexity"); `bound_wildcards` widens wildcards until a field is within the bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workflow.models.rules import Matcher
from workflow.pipeline.semver_prefixes import version_prefixes

# Complexity is event-ruler's MachineComplexityEvaluator measure: the most wildcard-pattern prefixes that one
# value can match at once, over the wildcard filters of one field. AWS publishes no number; this is the
# largest value seen deployed: three `*:stack/NAME/*` filters on one field (complexity 9) deployed, four
# (complexity 12) were refused "Rule is too complex" (https://github.com/vals-ai/Valkyrie/pull/278).
WILDCARD_COMPLEXITY_MAX = 9
MAX_PREFIX_SETS = 5_000  # sets of prefixes walked for one value before it counts as over the bound
STAR = ""  # a `*` token (every other token is one character)


@dataclass(frozen=True)
class Widening:
    """Where the event pattern accepts more than the rules: what, why, and what it accepts instead."""

    field: str  # "image-tag", "repository-name", or "pattern" (the whole pattern)
    pattern: str  # the rule's pattern, e.g. "semver:^2.1.0"; "" for the whole pattern
    reason: str
    accepts: str
    rules: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """snake_case keys, as every `--json` output."""
        return {
            "rules": list(self.rules),
            "field": self.field,
            "pattern": self.pattern,
            "reason": self.reason,
            "accepts": self.accepts,
        }


@dataclass(frozen=True)
class Translation:
    """EventBridge filters accepting at least what one pattern accepts (None: anything), and why more."""

    filters: tuple[Any, ...] | None
    reason: str | None = None
    accepts: str = ""


def translate(matcher: Matcher, noun: str) -> Translation:
    """The filters for one compiled pattern; `noun` ("tag", "repository") words what they accept."""
    if matcher.kind == "regex":
        return Translation(None, "EventBridge has no regular expressions", f"any {noun}")
    if matcher.semver_range is not None:
        prefixes, accepts = version_prefixes(matcher.semver_range)
        filters = tuple({"prefix": prefix} for prefix in prefixes)
        return Translation(filters, "EventBridge cannot compare versions", accepts)
    return _glob(re.sub(r"\*+", "*", matcher.source), matcher.case_insensitive, noun)


def _glob(glob: str, ignore_case: bool, noun: str) -> Translation:
    """`**` means what `*` means, so runs of stars are one; a glob without letters has no case."""
    ignore_case = ignore_case and glob.lower() != glob.upper()
    parts = glob.split("*")
    head, tail = parts[0], parts[-1]
    if len(parts) == 1:
        return Translation(({"equals-ignore-case": glob} if ignore_case else glob,))
    if glob == "*":
        return Translation(None)
    if len(parts) == 2 and not tail:
        return Translation((_affix("prefix", head, ignore_case),))
    if len(parts) == 2 and not head:
        return Translation((_affix("suffix", tail, ignore_case),))
    if not ignore_case:
        return Translation(({"wildcard": glob.replace("\\", "\\\\")},))
    return _widened(head, tail, True, "EventBridge's wildcard filter is case-sensitive", noun)


def _affix(kind: str, text: str, ignore_case: bool) -> dict[str, Any]:
    return {kind: {"equals-ignore-case": text} if ignore_case else text}


def _widened(head: str, tail: str, ignore_case: bool, reason: str, noun: str) -> Translation:
    """The longer of the text before the first `*` and after the last as a prefix or suffix, else anything."""
    if not head and not tail:
        return Translation(None, reason, f"any {noun}")
    kind, text = ("prefix", head) if len(head) >= len(tail) else ("suffix", tail)
    filters = (_affix(kind, text, ignore_case),)
    return Translation(filters, reason, describe(filters, noun))


def describe(filters: Iterable[Any] | None, noun: str) -> str:
    """Filters in words: "tags starting 'release-'; 'latest'"."""
    if filters is None:
        return f"any {noun}"
    words = []
    for item in filters:
        if isinstance(item, str):
            words.append(repr(item))
            continue
        [(kind, operand)] = item.items()
        text = operand["equals-ignore-case"] if isinstance(operand, dict) else operand
        case = " (any case)" if isinstance(operand, dict) or kind == "equals-ignore-case" else ""
        verb = {"prefix": "starting ", "suffix": "ending ", "wildcard": "matching "}.get(kind, "")
        words.append(f"{noun}s {verb}{text!r}{case}" if verb else f"{text!r}{case}")
    return "; ".join(words)


def bound_wildcards(
    field: str, noun: str, per_rule: list[list[Any] | None], names: list[str]
) -> tuple[list[list[Any] | None], list[Widening]]:
    """The rules' filters for one field with wildcards widened, most complex first, until the field's
    wildcard complexity is within WILDCARD_COMPLEXITY_MAX; and what was widened."""
    widenings: list[Widening] = []
    values = wildcard_values(per_rule)
    while wildcard_complexity(values) > WILDCARD_COMPLEXITY_MAX:
        worst = max(values, key=lambda value: wildcard_complexity([value]))
        glob = worst.replace("\\\\", "\\")
        parts = glob.split("*")
        reason = f"wildcard complexity over EventBridge's bound of {WILDCARD_COMPLEXITY_MAX}"
        widened = _widened(parts[0], parts[-1], False, reason, noun)
        item = {"wildcard": worst}
        users = tuple(name for name, filters in zip(names, per_rule, strict=True) if item in (filters or ()))
        per_rule = [_replaced(filters, item, widened.filters) for filters in per_rule]
        widenings.append(Widening(field, glob, reason, widened.accepts, users))
        values = wildcard_values(per_rule)
    return per_rule, widenings


def _replaced(filters: list[Any] | None, old: Any, new: tuple[Any, ...] | None) -> list[Any] | None:
    if filters is None or old not in filters:
        return filters
    if new is None:
        return None
    kept = [item for item in filters if item != old]
    return kept + [item for item in new if item not in kept]


def wildcard_values(per_rule: Iterable[list[Any] | None]) -> list[str]:
    """The wildcard values among the rules' filters."""
    return [
        item["wildcard"]
        for filters in per_rule
        for item in filters or ()
        if isinstance(item, dict) and "wildcard" in item
    ]


def wildcard_complexity(values: Iterable[str]) -> int:
    """An upper bound of event-ruler's complexity of these wildcard values together: the sum, over each
    distinct value, of the most of its prefixes one quoted input can match (the most over all inputs of a
    sum is at most the sum of each one's most). Exact up to WILDCARD_COMPLEXITY_MAX, "over" beyond."""
    total = 0
    for value in set(values):
        total += _most_prefixes(_tokens(value))
        if total > WILDCARD_COMPLEXITY_MAX:
            break
    return total


def _tokens(value: str) -> list[str]:
    """The value inside its JSON quotes, one token per character, STAR for `*`, escapes resolved."""
    tokens, escaped = ['"'], False
    for char in value:
        if escaped or char != "\\":
            tokens.append(STAR if char == "*" and not escaped else char)
            escaped = False
        else:
            escaped = True
    return [*tokens, '"']


def _most_prefixes(tokens: list[str]) -> int:
    """The most non-empty prefixes of the tokens that one input matches at once (a walk over every set of
    matching prefix lengths an input can reach, on each character the tokens name plus one they do not)."""
    start = _with_stars(tokens, {0})
    seen, pending, most = {start}, [start], 0
    alphabet = {token for token in tokens if token != STAR} | {"\0"}
    while pending:
        lengths = pending.pop()
        for char in alphabet:
            following = _with_stars(tokens, _step(tokens, lengths, char))
            most = max(most, len(following - {0}))
            if most > WILDCARD_COMPLEXITY_MAX or len(seen) > MAX_PREFIX_SETS:
                return max(most, WILDCARD_COMPLEXITY_MAX + 1)
            if following not in seen:
                seen.add(following)
                pending.append(following)
    return most


def _step(tokens: list[str], lengths: frozenset[int], char: str) -> set[int]:
    """Matching prefix lengths after one more character; a prefix ending in `*` keeps matching."""
    following = set()
    for length in lengths:
        if length and tokens[length - 1] == STAR:
            following.add(length)
        if length < len(tokens) and tokens[length] == char:
            following.add(length + 1)
    return following


def _with_stars(tokens: list[str], lengths: set[int]) -> frozenset[int]:
    """A `*` matches the empty string: a matching prefix followed by stars matches with them too."""
    extended = set(lengths)
    for length in lengths:
        while length < len(tokens) and tokens[length] == STAR:
            length += 1
            extended.add(length)
    return frozenset(extended)
