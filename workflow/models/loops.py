"""Replication loops: a destination in the source account and Region that a rule could select again.

Every tag the copy job or Precheck puts in ECR is itself an "ECR Image Action" PUSH event on the source
account's default bus (ECR user guide, "Amazon ECR events and EventBridge": "sent when each image push is
completed"), and a propagated delete is a DELETE event there. So a destination in the source account and
Region whose repository and tag a rule accepts starts the workflow again: app -> mirror/app ->
mirror/mirror/app and on (EventBridge user guide, "Best practices when defining event patterns": write
patterns that do not match the events their own targets cause, or they loop).

`validate` decides it over the patterns, as regular languages (greenery): the names a destination's template
renders from the repositories its rule accepts, against each rule's repositories, and the tags of both
rules against each other. What greenery cannot represent (a `semver:` range, a regular expression using RE2
syntax it does not parse) is widened to what could match, so the answer errs towards a loop, and says so.
The Plan decides it exactly, for the one repository and tag it plans (`selecting_rule`).
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from greenery import Fsm, parse

from workflow.models.rules import NameFilter, tag_matches

PLACEHOLDER = "{repository}"
# The names ECR accepts (CreateRepository `repositoryName`, TagResource tags; as workflow.core.grammar checks them,
# without the length bounds, which only shorten the languages).
# (greenery wants a `-` in a class escaped.)
REPOSITORY_NAMES = r"([a-z0-9]+([._\-][a-z0-9]+)*/)*[a-z0-9]+([._\-][a-z0-9]+)*"
TAG_NAMES = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
# Any semantic version with an optional leading v: what a `semver:` range could accept, widened.
SEMVER_TAGS = r"[vV]?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.\-]+)?(\+[0-9A-Za-z.\-]+)?"
ANYTHING = ".*"
# greenery builds automata; a longer expression than this is widened rather than risk a slow validate.
MAX_REGEX_CHARACTERS = 300
# The characters an example name is made of (every name and tag ECR accepts is made of them).
READABLE = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ._-/"
SPECIAL = set(".^$*+?{}[]\\|()")
# A character class (no nesting), to escape the `-` RE2 reads as a literal at its start or end.
CHARACTER_CLASS = re.compile(r"\[(\^?)((?:[^\]\\]|\\.)*)\]")


class RuleLike(Protocol):
    """What the loop check reads of a rule (workflow.models.config_parts.Rule)."""

    @property
    def name(self) -> str: ...

    @property
    def repositories(self) -> list[str]: ...

    @property
    def tag_filter(self) -> NameFilter: ...

    @property
    def repository_filter(self) -> NameFilter: ...


@dataclass(frozen=True)
class Language:
    """A set of names as a greenery automaton, with the widenings made to build it (empty: exact)."""

    automaton: Fsm
    widened: tuple[str, ...] = ()
    expression: str = ""  # the greenery expression it was built from, before the name grammar was applied

    def meet(self, other: Language) -> Language:
        """The names in both."""
        return Language(self.automaton & other.automaton, self.widened + other.widened)

    def example(self) -> str | None:
        """A shortest name in the set (letters and digits preferred), or None when it is empty.

        A breadth-first walk over the automaton's states with one character per transition: greenery's own
        `strings()` lists every string by length, which takes minutes past a few characters.
        """
        fsm = self.automaton
        seen, queue = {fsm.initial}, deque([(fsm.initial, "")])
        while queue:
            state, text = queue.popleft()
            if state in fsm.finals:
                return text
            for charclass, target in sorted(fsm.map.get(state, {}).items(), key=lambda item: str(item[0])):
                character = next((c for c in READABLE if charclass.accepts(c)), None)
                if character is not None and target not in seen:
                    seen.add(target)
                    queue.append((target, text + character))
        return None


@functools.lru_cache(maxsize=512)
def _fsm(expression: str) -> Fsm:
    return parse(expression).to_fsm()


def escaped(text: str) -> str:
    """`text` as a greenery literal."""
    return "".join(f"\\{c}" if c in SPECIAL else c for c in text)


def _literal_dashes(match: re.Match[str]) -> str:
    body = match[2]
    if body.startswith("-"):
        body = "\\" + body
    if body.endswith("-") and not body.endswith("\\-"):
        body = body[:-1] + "\\-"
    return f"[{match[1]}{body}]"


def _regex(pattern: str, what: str) -> tuple[str, str | None]:
    """A greenery expression accepting at least what one config pattern accepts, and the widening if any."""
    if pattern.startswith("semver:"):
        if what == "tag":
            return SEMVER_TAGS, f"{pattern!r} taken as any version"
        return ANYTHING, f"{pattern!r} taken as any name"
    if not pattern.startswith("re:"):
        return ".*".join(escaped(part) for part in pattern.split("*")), None
    expression = pattern[3:]
    # RE2 full-matches here, so anchors at the ends change nothing; anywhere else greenery would read them
    # as literal characters.
    expression = CHARACTER_CLASS.sub(_literal_dashes, expression.removeprefix("^"))
    if expression.endswith("$") and not expression.endswith("\\$"):
        expression = expression[:-1]
    unescaped = expression.replace("\\\\", "").replace("\\^", "").replace("\\$", "").replace("[^", "[")
    if len(expression) > MAX_REGEX_CHARACTERS or "^" in unescaped or "$" in unescaped:
        return ANYTHING, f"{pattern!r} taken as any {what}"
    try:
        parse(expression)
    except Exception:  # greenery raises its own parse errors for RE2 syntax it lacks
        return ANYTHING, f"{pattern!r} taken as any {what}"
    return f"({expression})", None


def _union(patterns: Iterable[str], what: str) -> tuple[str | None, tuple[str, ...]]:
    parts, widened = [], []
    for pattern in patterns:
        regex, widening = _regex(pattern, what)
        parts.append(regex)
        if widening:
            widened.append(widening)
    return ("|".join(parts) if parts else None), tuple(widened)


def repositories(patterns: Sequence[str]) -> Language:
    """The repository names the patterns accept."""
    union, widened = _union(patterns, "name")
    return Language(_fsm(REPOSITORY_NAMES) & _fsm(union or ""), widened, union or "")


def tags(include: Sequence[str], exclude: Sequence[str]) -> Language:
    """The tags an include/exclude pair accepts (an exclude that would be widened is left out instead)."""
    union, widened = _union(include, "tag")
    accepted = _fsm(TAG_NAMES) & _fsm(union or "")
    exact_excludes = [p for p in exclude if _regex(p, "tag")[1] is None]
    dropped = tuple(f"exclude {p!r} left out" for p in exclude if p not in exact_excludes)
    excluded, _ = _union(exact_excludes, "tag")
    if excluded is not None:
        accepted = accepted - _fsm(excluded)
    return Language(accepted, widened + dropped)


def rendered(template: str, sources: Language) -> Language:
    """The names `template` renders from the names in `sources`."""
    if "{" in template.replace(PLACEHOLDER, "") or "}" in template.replace(PLACEHOLDER, ""):
        return Language(
            _fsm(REPOSITORY_NAMES), (*sources.widened, f"template {template!r} taken as any name")
        )
    # Built from the expressions, not by concatenating automata: greenery's concatenation of the name grammar
    # with a literal suffix takes minutes.
    parts = template.split(PLACEHOLDER)
    expression = f"({sources.expression})".join(escaped(part) for part in parts)
    widened = sources.widened
    if len(parts) > 2:
        widened += (f"template {template!r} taken with a different name at each {PLACEHOLDER}",)
    return Language(_fsm(REPOSITORY_NAMES) & _fsm(expression), widened, expression)


@dataclass(frozen=True)
class Loop:
    """A destination whose copies rule `rule` selects again: `source` -> `destination` is one such copy."""

    rule: str
    source: str
    destination: str
    widened: tuple[str, ...]


def selected_again(template: str, rule: RuleLike, rules: Sequence[RuleLike]) -> Loop | None:
    """The first rule that could select again what `rule` copies through `template` in the source's place."""
    sources = repositories(rule.repositories)
    copies = rendered(template, sources)
    own_tags = _tags_of(rule)
    for other in rules:
        again = copies.meet(repositories(other.repositories))
        destination = again.example()
        both = own_tags.meet(_tags_of(other))
        if destination is None or both.example() is None:
            continue
        source = _source_of(template, destination) or sources.example() or "?"
        return Loop(other.name, source, destination, tuple(dict.fromkeys(again.widened + both.widened)))
    return None


def _tags_of(rule: RuleLike) -> Language:
    return tags([m.source for m in rule.tag_filter.include], [m.source for m in rule.tag_filter.exclude])


def _source_of(template: str, destination: str) -> str | None:
    """The source name `template` renders as `destination` (its one placeholder's text), if it has one."""
    literal = template.split(PLACEHOLDER)
    if len(literal) != 2 or not destination.startswith(literal[0]) or not destination.endswith(literal[1]):
        return None
    return destination[len(literal[0]) : len(destination) - len(literal[1])]


def selecting_rule(repository: str, tag: str, rules: Sequence[RuleLike]) -> str | None:
    """The first rule that selects `repository:tag` (a push of it would start the workflow again), or None."""
    for rule in rules:
        if rule.repository_filter.matches(repository) and tag_matches(rule.tag_filter, tag)[0]:
            return rule.name
    return None
