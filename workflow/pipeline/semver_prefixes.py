"""Tag prefixes that every version a semver range accepts starts with, for the EventBridge pattern.

EventBridge cannot compare versions, but a tag the Plan reads as a version (workflow.models.rules.parse_semver:
an optional `v` or `V`, then MAJOR.MINOR.PATCH with no leading zeros) starts with its major version. So a
range narrows to the prefixes of the majors it can accept: `^2.1.0` to `2.`, `v2.` and `V2.`; a range open
upwards (`>=1.0.0`) to its possible first digits. The majors are read from the range's clauses as
semantic_version matches them (workflow.models.rules), erring wide: a major is left out only when no version of
it can match.
"""

from __future__ import annotations

from collections.abc import Iterable

from semantic_version import NpmSpec
from semantic_version.base import AllOf, AnyOf, Clause, Never, Range

Interval = tuple[int, int | None]  # majors lo..hi, hi None: no upper bound
EVERY: list[Interval] = [(0, None)]
LEADS = ("", "v", "V")  # what may come before the version in a tag
MAX_LISTED_MAJORS = 10  # more majors than this are given by their first digit


def version_prefixes(spec: NpmSpec) -> tuple[list[str], str]:
    """The tag prefixes for a range, and what they accept in words."""
    intervals = _majors(spec.clause) or EVERY  # a range accepting nothing still needs a filter
    majors = _listed(intervals)
    if majors is not None:
        prefixes = [f"{lead}{m}." for m in majors for lead in LEADS]
        if len(majors) == 1:
            return prefixes, f"tags starting {majors[0]}., v{majors[0]}. or V{majors[0]}."
        shown = ", ".join(f"{m}." for m in majors[:-1])
        return prefixes, f"tags starting {shown} or {majors[-1]}., also after v or V"
    digits = "0123456789" if min(lo for lo, _ in intervals) == 0 else "123456789"
    words = f"tags starting with a digit {digits[0]}-9, also after v or V"
    return [f"{lead}{digit}" for digit in digits for lead in LEADS], words


def _listed(intervals: list[Interval]) -> list[int] | None:
    if any(hi is None for _, hi in intervals):
        return None
    majors = sorted({m for lo, hi in intervals for m in range(lo, (hi or 0) + 1)})
    return majors if len(majors) <= MAX_LISTED_MAJORS else None


def _majors(clause: Clause) -> list[Interval]:
    """The majors of the versions `clause` can match, as intervals (any unknown clause: every major)."""
    if isinstance(clause, AnyOf):
        return [interval for inner in clause.clauses for interval in _majors(inner)]
    if isinstance(clause, AllOf) and all(isinstance(inner, Range) for inner in clause.clauses):
        return _all_of(list(clause.clauses))
    if isinstance(clause, Range):
        return _all_of([clause])
    return [] if isinstance(clause, Never) else EVERY  # Always, or a clause NpmSpec does not make


def _all_of(ranges: list[Range]) -> list[Interval]:
    """Releases within every range's bound, and the pre-releases those ranges let through."""
    return _intersection(map(_release_bounds, ranges)) + _prereleases(ranges)


def _intersection(bounds: Iterable[Interval]) -> list[Interval]:
    lo, hi = 0, None
    for low, high in bounds:
        lo, hi = max(lo, low), high if hi is None else hi if high is None else min(hi, high)
    return [(lo, hi)] if hi is None or lo <= hi else []


def _release_bounds(each: Range) -> Interval:
    """The majors of the release versions one range matches."""
    target = each.target
    if each.operator in (Range.OP_GT, Range.OP_GTE):
        return target.major, None
    if each.operator == Range.OP_EQ:
        return target.major, target.major
    if each.operator == Range.OP_LT and (target.minor, target.patch) == (0, 0):
        return 0, target.major - 1  # releases of this major are all >= MAJOR.0.0 >= the target
    if each.operator in (Range.OP_LT, Range.OP_LTE):
        return 0, target.major
    return 0, None


def _prereleases(ranges: list[Range]) -> list[Interval]:
    """A same-patch range lets a pre-release through only with its own MAJOR.MINOR.PATCH (Range.match), so
    with such ranges a pre-release has their one major (or none if they disagree); without, any major the
    loose bounds allow."""
    patches = {
        each.target.truncate() for each in ranges if each.prerelease_policy == Range.PRERELEASE_SAMEPATCH
    }
    if len(patches) > 1:
        return []
    if patches:
        [patch] = patches
        return [(patch.major, patch.major)]
    return _intersection(_prerelease_bounds(each) for each in ranges)


def _prerelease_bounds(each: Range) -> Interval:
    """As for releases, except that below MAJOR.0.0 are pre-releases of MAJOR (MAJOR.0.0-rc.1)."""
    return (0, each.target.major) if each.operator == Range.OP_LT else _release_bounds(each)
