"""Request + config -> targets; and the EventBridge event pattern compiled from the rules."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from workflow.core.exceptions import DestinationNotAllowed, InvalidRequest, ReplicationLoop
from workflow.core.grammar import artifact_tag_subject, shown
from workflow.core.partitions import partition_of
from workflow.models import loops
from workflow.models.config import REPOSITORY_PLACEHOLDER, ReplicationConfig, Rule, SourceConfig
from workflow.models.payloads import (
    CredentialsSecret,
    DestinationRef,
    Plan,
    ReplicationRequest,
    RequestAction,
    Target,
)
from workflow.models.rules import Matcher, tag_matches
from workflow.pipeline.event_filters import (
    Widening,
    bound_wildcards,
    translate,
    wildcard_complexity,
    wildcard_values,
)
from workflow.pipeline.seeds import seeded
from workflow.registry.pacing import put_image_share

# EventBridge quotas, "Event pattern size": 2,048 characters (adjustable), counted on the JSON text
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html).
EVENT_PATTERN_MAX_CHARACTERS = 2048


def plan(request: ReplicationRequest, config: ReplicationConfig) -> Plan:
    """The targets one request replicates to, or the reason nothing replicates.

    A manual run may narrow the destinations to a subset of the configured ones, never add any:
    a destination outside the config raises DestinationNotAllowed.
    """
    base = {
        "repository": request.repository,
        "tag": request.tag,
        "dry_run": request.dry_run,
        "action": request.action,
        "pushed_at": request.pushed_at,
        "override": request.override,
    }
    if request.skipped_reason:
        named = request.source_account and request.source_region
        where = f"{request.source_account}/{request.source_region}" if named else None
        return Plan(**base, skipped_reason=request.skipped_reason, source=where)
    if request.repository is None or request.tag is None:
        raise InvalidRequest("a request needs a repository and a tag")
    source = source_of(request, config)
    base["source"] = source.name
    subject = artifact_tag_subject(request.tag)
    if subject is not None:  # its own push (CI signs after pushing); the copy of its subject carries it
        return Plan(
            **base,
            skipped_reason=f"{request.repository}:{request.tag} is a signature or attestation artifact of "
            f"{subject} (cosign's tag schema); it is copied with its subject, never on its own",
        )
    allowed = _configured_destinations(request.repository, config, source)
    if request.destinations is not None:
        _check_narrowing(request.destinations, allowed)
    image = _SourceImage.of(request.repository, request.tag, request.digest, request.action, source, config)
    targets, reasons = _targets(image, config)
    if request.destinations is not None:
        wanted = {(d.account, d.region) for d in request.destinations}
        targets = [t for t in targets if (t.account, t.region) in wanted]
    if not targets:
        reason = "; ".join(reasons) or "no destination selected"
        return Plan(**base, skipped_reason=f"{request.repository}:{request.tag} does not replicate: {reason}")
    targets = _paced(targets, config.max_concurrency)
    # Promotion gates guard what is copied; a delete copies nothing, so it is not gated.
    gated = {rule.name for rule in config.rules_for(source) if rule.gates is not None}
    is_gated = request.action == "replicate" and any(gated & set(t.selecting_rules) for t in targets)
    return Plan(**base, targets=seeded(targets, config), gated=is_gated)


def _paced(targets: list[Target], max_concurrency: int) -> list[Target]:
    """Each target with its share of the PutImage quota of its account and Region: the Map runs up to
    `max_concurrency` copy builds at once, and those writing to one account and Region share its quota."""
    builds = Counter((t.account, t.region) for t in targets)
    return [
        t.model_copy(update={"put_rate": put_image_share(builds[(t.account, t.region)], max_concurrency)})
        for t in targets
    ]


def source_of(request: ReplicationRequest, config: ReplicationConfig) -> SourceConfig:
    """The configured source the image is in: the event's account and Region, the manual input's `source`, or
    (without one) the one source whose rules select the repository; raises InvalidRequest otherwise."""
    kind = "event" if request.origin == "event" else "input"
    account, region = request.source_account, request.source_region
    if account is None and region is None:
        selecting = [
            source
            for source in config.sources
            if any(
                rule.repository_filter.matches(str(request.repository)) for rule in config.rules_for(source)
            )
        ]
        if len(selecting) > 1:
            names = ", ".join(source.name for source in selecting)
            raise InvalidRequest(
                f"{kind}: {request.repository!r} is replicated from {len(selecting)} sources ({names}); name the "
                'one the image is in: "source": {"account": ..., "region": ...}'
            )
        return selecting[0] if selecting else config.source
    source = config.source_named(str(account), str(region))
    if source is None:
        raise InvalidRequest(
            f"{kind} is from {shown(account)}/{shown(region)}, which is not one of the config's sources "
            f"({', '.join(s.name for s in config.sources)})"
        )
    return source


def _configured_destinations(
    repository: str, config: ReplicationConfig, source: SourceConfig
) -> set[tuple[str, str]]:
    return {
        (destination.account, region)
        for rule in config.rules_for(source)
        if rule.repository_filter.matches(repository)
        for destination in rule.account_destinations
        for region in destination.regions
    }


def _check_narrowing(requested: list[DestinationRef], allowed: set[tuple[str, str]]) -> None:
    outside = [f"{d.account}/{d.region}" for d in requested if (d.account, d.region) not in allowed]
    if outside:
        configured = ", ".join(f"{a}/{r}" for a, r in sorted(allowed)) or "none"
        raise DestinationNotAllowed(
            f"destination(s) {', '.join(outside)} are not configured for this repository "
            f"(configured: {configured}); a manual run can only narrow the configured destinations"
        )


def _targets(image: _SourceImage, config: ReplicationConfig) -> tuple[list[Target], list[str]]:
    targets: dict[tuple[str, str, str], Target] = {}
    reasons = []
    source = image.source
    for rule in config.rules:
        if not rule.applies_to(source):
            reasons.append(f"rule {rule.name!r}: does not replicate {source.name}")
            continue
        if not rule.repository_filter.matches(image.repository):
            reasons.append(f"rule {rule.name!r}: repository {image.repository!r} not included")
            continue
        accepted, reason = tag_matches(rule.tag_filter, image.tag)
        if not accepted:
            reasons.append(f"rule {rule.name!r}: {reason}")
            continue
        if image.action == "delete" and not rule.propagate_deletes:
            reasons.append(f"rule {rule.name!r}: does not propagate deletes (propagate_deletes is off)")
            continue
        for target in _rule_targets(rule, image, config):
            key = (target.account, target.region, target.repository)
            if key == (source.account, source.region, image.repository):
                reasons.append(f"rule {rule.name!r}: {target.account}/{target.region} is the source itself")
                continue
            _refuse_loop(target, config)
            first = targets.setdefault(key, target)
            if rule.name not in first.selecting_rules:
                # A destination that one selecting rule refuses to overwrite is never overwritten.
                conflict = (
                    "refuse" if "refuse" in (first.on_tag_conflict, rule.on_tag_conflict) else "replace"
                )
                targets[key] = first.model_copy(
                    update={"rules": [*first.selecting_rules, rule.name], "on_tag_conflict": conflict}
                )
    if image.action == "delete":  # kept while another source repository written there has the tag
        return [
            t.model_copy(update={"other_sources": other_sources(config, t)}) for t in targets.values()
        ], reasons
    return list(targets.values()), reasons


def _refuse_loop(target: Target, config: ReplicationConfig) -> None:
    """Raise ReplicationLoop for a target in a source's account and Region that a rule of that source selects
    again: the tag put there is an ECR event on that source's bus, which would start the workflow again
    (workflow/models/loops.py)."""
    place = config.source_named(target.account, target.region)
    if place is None:
        return
    again = loops.selecting_rule(target.repository, target.tag, config.rules_for(place))
    if again is not None:
        raise ReplicationLoop(
            f"{target.source_repository}:{target.tag} -> {target.repository}:{target.tag} in "
            f"{target.account}/{target.region} is selected again by rule {again!r}: its copy would start the "
            "workflow again (a replication loop; `ecr-replicate validate` refuses this config)"
        )


class _SourceImage(NamedTuple):
    repository: str
    tag: str
    digest: str | None
    registry: str
    insecure: bool
    action: RequestAction
    source: SourceConfig
    role_arn: str | None

    @classmethod
    def of(
        cls,
        repository: str,
        tag: str,
        digest: str | None,
        action: RequestAction,
        source: SourceConfig,
        config: ReplicationConfig,
    ) -> _SourceImage:
        """The image in `source`, read from its registry (through its read-only role in another account)."""
        registry, insecure = config.endpoint(source.account, source.region)
        return cls(
            repository, tag, digest, registry, insecure, action, source, config.source_role_arn(source)
        )


def rule_targets(
    rule: Rule,
    repository: str,
    tag: str,
    config: ReplicationConfig,
    action: RequestAction = "replicate",
    source: SourceConfig | None = None,
) -> list[Target]:
    """Every target of one rule for `repository:tag` in `source` (default: the home one), whatever its tag
    filters (sync's listings use it)."""
    image = _SourceImage.of(repository, tag, None, action, source or config.source, config)
    return _rule_targets(rule, image, config)


def other_sources(config: ReplicationConfig, target: Target) -> list[str] | None:
    """The other source repositories the rules replicate into the target's destination repository, named
    from the config alone; None when a rule sends repositories there that only a listing of the source
    could name (a pattern with a repository template without {repository})."""
    names: set[str] = set()
    for rule in config.rules:
        for destination in rule.account_destinations:
            if not any(
                config.endpoint(destination.account, r)[0] == target.registry for r in destination.regions
            ):
                continue
            if REPOSITORY_PLACEHOLDER in destination.repository:
                candidate = _source_named(destination.repository, target.repository)
                names.update([candidate] if candidate and rule.repository_filter.matches(candidate) else [])
            elif destination.repository == target.repository:
                include = rule.repository_filter.include
                literal = [m.source for m in include if m.kind == "glob" and "*" not in m.source]
                if len(literal) != len(include):
                    return None
                names.update(name for name in literal if rule.repository_filter.matches(name))
    names.discard(target.source_repository)
    return sorted(names)


def _source_named(template: str, repository: str) -> str | None:
    """The source repository `template` renders as `repository`, or None."""
    parts = [re.escape(part) for part in template.split(REPOSITORY_PLACEHOLDER)]
    pattern = parts[0] + "(?P<r>.+)" + "(?P=r)".join(parts[1:])
    match = re.fullmatch(pattern, repository)
    return match["r"] if match else None


def replicated_into(
    config: ReplicationConfig, source_repository: str, registry: str, repository: str
) -> bool:
    """True when a rule of `config` replicates `source_repository` into `repository` at `registry` (a
    destination's registry host: two accounts' endpoints may share one)."""
    for rule in config.rules:
        if not rule.repository_filter.matches(source_repository):
            continue
        for destination in rule.account_destinations:
            if destination.render_repository(source_repository) == repository and any(
                config.endpoint(destination.account, region)[0] == registry for region in destination.regions
            ):
                return True
    return False


def _rule_targets(rule: Rule, image: _SourceImage, config: ReplicationConfig) -> list[Target]:
    targets = []
    for destination in rule.account_destinations:
        credentials = destination.credentials and CredentialsSecret(
            secret_id=destination.credentials.secret,
            region=destination.credentials.secret_region(config.source),
        )
        for region in destination.regions:
            registry, insecure = config.endpoint(destination.account, region)
            targets.append(
                Target(
                    account=destination.account,
                    region=region,
                    repository=destination.render_repository(image.repository),
                    tag=image.tag,
                    rule=rule.name,
                    source_registry=image.registry,
                    source_repository=image.repository,
                    source_reference=image.digest or image.tag,
                    registry=registry,
                    source_account=image.source.account,
                    source_region=image.source.region,
                    role_arn=partition_of(region).role_arn(destination.account, destination.role_name),
                    external_id=destination.external_id,
                    credentials=credentials,
                    insecure=insecure,
                    source_insecure=image.insecure,
                    create_repository=rule.create_repository if image.action == "replicate" else None,
                    action=image.action,
                    rules=[rule.name],
                    on_tag_conflict=rule.on_tag_conflict,
                    source=image.source.name,
                    source_role_arn=image.role_arn,
                )
            )
    return targets


def _field_filters(
    rule: Rule, field: str, noun: str, matchers: tuple[Matcher, ...], widenings: list[Widening]
) -> list[Any] | None:
    """EventBridge filters accepting at least what the matchers accept (None: anything); where they accept
    more, a Widening says so (only for what makes them accept anything, when something does)."""
    translations = [(matcher, translate(matcher, noun)) for matcher in matchers]
    if any(t.filters is None and t.reason is None for _, t in translations):
        return None
    unfiltered = [(m, t) for m, t in translations if t.filters is None]
    for matcher, translation in unfiltered or translations:  # what makes it "any": the others are moot
        if translation.reason:
            widenings.append(
                Widening(field, matcher.source, translation.reason, translation.accepts, (rule.name,))
            )
    if unfiltered:
        return None
    filters: list[Any] = []
    for _, translation in translations:
        filters += [item for item in translation.filters or () if item not in filters]
    return filters


def _clause(
    repositories: list[Any] | None, tags: list[Any] | None, actions: list[str] | None = None
) -> dict[str, Any]:
    clause: dict[str, Any] = {}
    if actions is not None:
        clause["action-type"] = actions
    if repositories is not None:
        clause["repository-name"] = repositories
    clause["image-tag"] = tags if tags is not None else [{"exists": True}]
    return clause


def _union(field_filters: list[list[Any] | None]) -> list[Any] | None:
    """Filters accepting what any of `field_filters` accepts (None: anything)."""
    merged: list[Any] = []
    for filters in field_filters:
        if filters is None:
            return None
        merged.extend(f for f in filters if f not in merged)
    return merged


def _literal_start(item: Any) -> str:
    """The text every repository name the filter item accepts starts with."""
    if isinstance(item, str):
        return item
    if "prefix" in item:
        return str(item["prefix"])
    return str(item.get("wildcard", "")).split("*", 1)[0].replace("\\\\", "\\")


def _shortened(filters: list[Any], length: int) -> list[Any] | None:
    """Exact names and prefixes of at most `length` characters accepting at least what `filters` accepts."""
    items: list[Any] = []
    for item in filters:
        start = _literal_start(item)
        if isinstance(item, str) and len(item) <= length:
            items.append(item)
        elif not start:
            return None
        else:
            items.append({"prefix": start[:length]})
    prefixes = {i["prefix"] for i in items if isinstance(i, dict)}
    kept: list[Any] = []
    for item in items:
        start = _literal_start(item)
        covered = any(start.startswith(p) and (p != start or isinstance(item, str)) for p in prefixes)
        if not covered and item not in kept:
            kept.append(item)
    return kept


def _actions(config: ReplicationConfig) -> list[str] | None:
    """The action-type filter each clause carries when some rule propagates deletes (else None: PUSH, once)."""
    return ["PUSH", "DELETE"] if any(rule.propagate_deletes for rule in config.rules) else None


class _RuleFilters(NamedTuple):
    """Each rule's repository and tag filters, within EventBridge's wildcard bound, and what they widen."""

    repositories: list[list[Any] | None]
    tags: list[list[Any] | None]
    widenings: list[Widening]

    @classmethod
    def of(cls, config: ReplicationConfig) -> _RuleFilters:
        widenings: list[Widening] = []
        names = [rule.name for rule in config.rules]
        fields = {}
        for field, noun in (("repository-name", "repository"), ("image-tag", "tag")):
            per_rule = [
                _field_filters(rule, field, noun, _matchers(rule, field), widenings) for rule in config.rules
            ]
            fields[field], bounded = bound_wildcards(field, noun, per_rule, names)
            widenings += bounded
        for rule in config.rules:
            widenings += [_excluded(rule, matcher.source) for matcher in rule.tag_filter.exclude]
        return cls(fields["repository-name"], fields["image-tag"], widenings)


def _matchers(rule: Rule, field: str) -> tuple[Matcher, ...]:
    return rule.repository_filter.include if field == "repository-name" else rule.tag_filter.include


def _excluded(rule: Rule, source: str) -> Widening:
    reason = "an exclude, which EventBridge cannot subtract from an include on one field"
    return Widening("image-tag", source, reason, "the tags it excludes", (rule.name,))


def _widenings(config: ReplicationConfig, rules: _RuleFilters) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Candidate $or clauses, from the exact filter on, each accepting at least what the one before does."""
    every = _actions(config)
    actions = [every and (every if rule.propagate_deletes else ["PUSH"]) for rule in config.rules]
    exact: list[dict[str, Any]] = []
    for clause in map(_clause, rules.repositories, rules.tags, actions):
        if clause not in exact:
            exact.append(clause)
    yield "exact", exact
    all_repositories = _union(rules.repositories)
    yield "rules merged", [_clause(all_repositories, _union(rules.tags), every)]
    yield "tag filters dropped", [_clause(all_repositories, None, every)]
    if all_repositories:
        longest = max(len(_literal_start(item)) for item in all_repositories)
        for length in range(longest, 0, -1):
            yield (
                f"repository prefixes of {length} characters",
                [_clause(_shortened(all_repositories, length), None, every)],
            )


# What each step past the exact pattern accepts.
SIZE_STEPS = {
    "rules merged": "any listed repository with any listed tag",
    "tag filters dropped": "any tag of the listed repositories",
    "repository prefixes": "repositories starting with the first characters of the listed ones",
    "any tagged push": "any tagged push in the account",
}


def pattern_text(pattern: dict[str, Any]) -> str:
    """The pattern as compact JSON, the form whose characters EventBridge counts against its limit."""
    return json.dumps(pattern, separators=(",", ":"))


@dataclass(frozen=True)
class CompiledPattern:
    """The event pattern, which size step it is ("exact" when none), and where it accepts more than the rules."""

    pattern: dict[str, Any]
    step: str
    widened: tuple[Widening, ...] = ()

    @property
    def exact(self) -> bool:
        """True when a push starts an execution only if some rule accepts it."""
        return not self.widened

    @property
    def length(self) -> int:
        """Characters EventBridge counts against EVENT_PATTERN_MAX_CHARACTERS."""
        return len(pattern_text(self.pattern))

    def wildcard_complexity(self) -> dict[str, int]:
        """Per filtered field, the (upper bound of the) wildcard complexity EventBridge measures."""
        detail = self.pattern["detail"]
        clauses = detail.get("$or", [detail])
        return {
            field: wildcard_complexity(wildcard_values(clause.get(field) for clause in clauses))
            for field in ("repository-name", "image-tag")
        }


def _pattern(clauses: list[dict[str, Any]], envelope: dict[str, list[str]]) -> dict[str, Any]:
    detail: dict[str, Any] = {"result": ["SUCCESS"]}
    if "action-type" not in clauses[0]:  # no rule propagates deletes: pushes only
        detail = {"action-type": ["PUSH"], **detail}
    if len(clauses) == 1:
        detail.update(clauses[0])
    else:
        detail["$or"] = clauses
    return {"source": ["aws.ecr"], "detail-type": ["ECR Image Action"], **envelope, "detail": detail}


def _envelope(config: ReplicationConfig, source: SourceConfig | None) -> dict[str, list[str]]:
    """The `account` and `region` filters of a config with several sources: `source`'s (its forwarding rule), or
    every source's (the home rule, which receives every source's events). An event keeps the account and Region
    it came from when EventBridge sends it to another account's or Region's bus (EventBridge user guide, "Amazon
    EventBridge events": `region` "identifies the AWS Region where the event originated"; "Sending and receiving
    events between AWS accounts": the receiver's rules match the sender's events by `account`)."""
    if len(config.sources) == 1:
        return {}
    sources = [source] if source is not None else list(config.sources)
    return {
        "account": sorted({s.account for s in sources}),
        "region": sorted({s.region for s in sources}),
    }


def _source_widenings(config: ReplicationConfig, source: SourceConfig | None) -> tuple[Widening, ...]:
    """The home rule matches every source's pushes with every rule's filters (the Plan applies `sources`), and
    its account and Region filters also accept the pairs of a listed account and a listed Region that are no
    source (the Plan refuses those)."""
    if source is not None or len(config.sources) == 1:
        return ()
    named = tuple(rule.name for rule in config.rules if rule.sources is not None)
    widenings = []
    if named:
        widenings.append(
            Widening(
                "pattern",
                "",
                "one rule on the home bus for every source: each rule's filters match every source's pushes",
                "pushes of sources a rule does not name (the Plan skips them)",
                named,
            )
        )
    envelope = _envelope(config, None)
    if len(envelope["account"]) * len(envelope["region"]) > len(config.sources):
        widenings.append(
            Widening(
                "account",
                "",
                "the account and region filters are separate lists",
                "events of a listed account in a listed Region that is not one of its sources (no forwarding "
                "rule sends them; the Plan refuses them)",
            )
        )
    return tuple(widenings)


def compile_event_pattern(config: ReplicationConfig, source: SourceConfig | None = None) -> CompiledPattern:
    """The narrowest pattern for the rules that EventBridge accepts.

    When a rule has `propagate_deletes`, the pattern also matches DELETE actions (ECR's image deletion
    event): each clause names its action-type, PUSH only for the rules without it in the exact pattern.

    Each rule's patterns become the EventBridge filters that say them where such filters exist, and wider
    ones where not (event_filters.py), wildcards widened until each field is within EventBridge's wildcard
    complexity bound; excludes are left to the Plan Lambda, which stays the exact filter. When that is over
    EVENT_PATTERN_MAX_CHARACTERS, it is widened step by step: the rules merged into one clause, then the tag
    filters dropped, then the repository filters cut to shorter prefixes, finally any tagged push in the
    account (a pattern with no text from the config, so it always fits). `widened` lists every widening.

    With several sources, the pattern also filters `account` and `region`: every source's (the home rule), or
    `source`'s alone with only the rules that name it (that source's forwarding rule).
    """
    envelope = _envelope(config, source)
    source_widenings = _source_widenings(config, source)
    if source is not None:
        config = config.model_copy(update={"rules": config.rules_for(source)})
    rules = _RuleFilters.of(config)
    exact_length = 0
    for step, clauses in _widenings(config, rules):
        pattern = _pattern(clauses, envelope)
        length = len(pattern_text(pattern))
        exact_length = exact_length or length
        if length <= EVENT_PATTERN_MAX_CHARACTERS:
            widened = source_widenings + tuple(rules.widenings) + _size_widening(step, exact_length)
            return CompiledPattern(pattern, step, widened)
    widest = _pattern([_clause(None, None, _actions(config))], envelope)
    return CompiledPattern(
        widest,
        "any tagged push",
        source_widenings + tuple(rules.widenings) + _size_widening("any tagged push", exact_length),
    )


def _size_widening(step: str, exact_length: int) -> tuple[Widening, ...]:
    if step == "exact":
        return ()
    reason = f"the exact pattern is {exact_length:,} characters, over EventBridge's {EVENT_PATTERN_MAX_CHARACTERS:,}"
    return (Widening("pattern", "", reason, f"{step}: {SIZE_STEPS[step.split(' of ')[0]]}"),)


def event_pattern(config: ReplicationConfig, source: SourceConfig | None = None) -> dict[str, Any]:
    """The EventBridge pattern for ECR pushes the rules may accept, within EventBridge's limits: the home rule's,
    or with `source` the forwarding rule's of that source."""
    return compile_event_pattern(config, source).pattern
