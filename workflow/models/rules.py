"""Repository and tag matchers: glob (`release-*`), `re:` (full match) and `semver:` ranges.

Patterns:
- `release-*`: a glob; `*` matches any run of characters (including `/`); `?`, `[ ]` and `{ }` are
  refused, everything else is literal.
- `re:^v\\d+$`: an RE2 regular expression that must match the whole name. RE2 runs in time linear in
  the name's length, so no pattern can stall planning; it has no backreferences or lookarounds, and a
  pattern using them is refused with RE2's reason. `\\d`, `\\w` and `\\s` are ASCII-only.
- `semver:>=2.0.0 <3`: an npm-style semver range; the tag may carry a leading `v` or `V`.

Globs and `re:` patterns are case-sensitive unless compiled with `case_insensitive` (a rule's
`tags.case_insensitive`); a semver range reads versions as semver does either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

import re2
import semantic_version

from workflow.core.grammar import cut, shown, tag_problem

GLOB_SPECIALS = re.compile(r"[?\[\]{}]")
PatternKind = Literal["glob", "regex", "semver"]


def _options(case_sensitive: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the reason is raised, not also logged to stderr
    options.case_sensitive = case_sensitive
    return options


_RE2_OPTIONS = {True: _options(case_sensitive=True), False: _options(case_sensitive=False)}


class CompiledRegex(Protocol):
    """What a Matcher needs of a compiled RE2 expression."""

    def fullmatch(self, text: str) -> object | None: ...


def _re2(expression: str, case_sensitive: bool = True) -> CompiledRegex:
    """Compile with RE2 (linear-time matching); raises ValueError with RE2's reason."""
    try:
        return re2.compile(expression, _RE2_OPTIONS[case_sensitive])
    except re2.error as error:
        reason = error.args[0] if error.args else "cannot compile"
        raise ValueError(
            reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        ) from None


@dataclass(frozen=True)
class Matcher:
    """One compiled pattern."""

    source: str
    kind: PatternKind
    regex: CompiledRegex | None = None
    semver_range: semantic_version.NpmSpec | None = None
    case_insensitive: bool = False

    def matches(self, value: str) -> bool:
        """True when `value` matches this pattern."""
        if self.semver_range is not None:
            version = parse_semver(value)
            return version is not None and version in self.semver_range
        assert self.regex is not None
        return self.regex.fullmatch(value) is not None


def parse_semver(tag: str) -> semantic_version.Version | None:
    """Parse a tag as a semantic version (an optional leading `v` is allowed), or None."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    try:
        return semantic_version.Version(text)
    except ValueError:
        return None


def compile_pattern(pattern: str, case_insensitive: bool = False) -> Matcher:
    """Compile one pattern, raising ValueError with a message that says what is wrong."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{shown(pattern)} is not a pattern (expected a non-empty string)")
    if pattern.startswith("re:"):
        try:
            regex = _re2(pattern[3:], not case_insensitive)
            return Matcher(pattern, "regex", regex=regex, case_insensitive=case_insensitive)
        except ValueError as error:
            raise ValueError(
                f"{shown(pattern)} is not a valid regular expression for RE2: {cut(str(error))}"
            ) from None
    if pattern.startswith("semver:"):
        try:
            spec = semantic_version.NpmSpec(pattern[7:].strip())
        except ValueError as error:
            raise ValueError(f"{shown(pattern)} is not a valid semver range: {cut(str(error))}") from None
        return Matcher(pattern, "semver", semver_range=spec, case_insensitive=case_insensitive)
    if GLOB_SPECIALS.search(pattern):
        raise ValueError(
            f"{shown(pattern)} is not a valid glob: only '*' is a wildcard (use 're:' for a regular expression)"
        )
    expression = ".*".join(re2.escape(part) for part in pattern.split("*"))
    return Matcher(
        pattern, "glob", regex=_re2(expression, not case_insensitive), case_insensitive=case_insensitive
    )


@dataclass(frozen=True)
class NameFilter:
    """Include/exclude lists of patterns; an exclude always wins over an include."""

    include: tuple[Matcher, ...]
    exclude: tuple[Matcher, ...] = ()

    @classmethod
    def compile(
        cls, include: Iterable[str], exclude: Iterable[str] = (), case_insensitive: bool = False
    ) -> NameFilter:
        """Compile pattern lists; raises ValueError naming the first bad pattern."""
        return cls(
            tuple(compile_pattern(pattern, case_insensitive) for pattern in include),
            tuple(compile_pattern(pattern, case_insensitive) for pattern in exclude),
        )

    def matches(self, value: str) -> bool:
        """True when `value` is included and not excluded."""
        if any(matcher.matches(value) for matcher in self.exclude):
            return False
        return any(matcher.matches(value) for matcher in self.include)


def tag_matches(tag_filter: NameFilter, tag: str) -> tuple[bool, str]:
    """Check a tag against ECR's grammar, then the filter; returns (accepted, reason)."""
    problem = tag_problem(tag)
    if problem:
        return False, problem
    if any(matcher.matches(tag) for matcher in tag_filter.exclude):
        excluded_by = next(m.source for m in tag_filter.exclude if m.matches(tag))
        return False, f"tag {tag!r} is excluded by {excluded_by!r}"
    if tag_filter.matches(tag):
        return True, "accepted"
    patterns = ", ".join(repr(m.source) for m in tag_filter.include)
    return False, f"tag {tag!r} matches none of {patterns}"
