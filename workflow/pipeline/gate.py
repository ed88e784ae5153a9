"""The Gate step: one image through every gated rule of its plan, before any destination is touched.

It resolves the source tag to its digest once, gates that digest under each rule the targets come from
(`gate_image`), and returns the plan with:
- `targets`: the targets that may replicate; those of gated rules pinned to the gated digest;
- `blocked`: one record per target no rule lets through (status `blocked`, error `ImageBlocked`, the
  reasons), or that could not be gated (status `failed`, the error's name): never copied;
- `gate`: `verdict` "wait" (a scan or a signature a rule waits for is not there yet: nothing changed, ask
  again after `wait_seconds`) or "done", and when it first looked.
A registry that stalls or stays unavailable (RegistryTimeout, RegistryUnavailable) ends the look with that
error instead: the state machine retries the Gate task, and when the retries run out its Catch fails every
target of the image (GateFailed).

A destination selected by several rules replicates when one of them lets the image through (an ungated
rule always does). A break-glass override (manual input) turns a rule's block or wait into a pass only if
that rule says `allow_override: true`; otherwise the block stands and says the override was refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from workflow.core.exceptions import (
    GateCheckFailed,
    ImageBlocked,
    RegistryTimeout,
    RegistryUnavailable,
    ReplicationError,
)
from workflow.core.grammar import fit
from workflow.engine.ecr import missing_image
from workflow.gates.decision import Decision
from workflow.gates.image import gate_image
from workflow.models.config import ReplicationConfig
from workflow.models.payloads import Override, Target, TargetResult
from workflow.models.policy import Gates
from workflow.pipeline.seeds import seeded
from workflow.registry.client import RegistryClient

# The Wait loop's bound. A look is one Gate/GateWait?/GateWait round: 9 history events (TaskStateEntered,
# TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited; ChoiceStateEntered/Exited; WaitStateEntered/Exited)
# and 3 state transitions. Every gate waits at most MAX_WAIT_MINUTES (60), for a scan or a signature alike, so
# looking every 30 s is at most 121 looks: ~1,100 events, far inside the 25,000 of one execution's history
# ("Step Functions service quotas"), and ~360 transitions ($0.025 per 1,000 on Standard workflows: under a cent)
# plus 121 short Gate invocations. Each look reads a bounded amount: one manifest, at most MAX_PLATFORMS scans,
# MAX_SIGNATURE_MANIFESTS signatures, one signing status per profile.
# Polling, not waiting for the signature's own PUSH event: the loop already exists and bounds itself; reacting
# to the event would need a task token stored per image digest, a second EventBridge rule for signature tags and
# referrer events, and still a timeout, to save at most one poll interval (30 s) per release.
DEFAULT_POLL_SECONDS = 30
# Registry faults another invocation may not meet: the look ends with them (the ASL's Gate Retry matches them).
TRANSIENT = (RegistryTimeout, RegistryUnavailable)
# A blocked record's reasons: enough for every rule's verdict, short enough that 100 blocked destinations
# stay far inside Step Functions' 256 KiB state ("Step Functions service quotas").
REASON_LIMIT = 1000


def waited_since(pushed_at: datetime | None, now: datetime | None = None) -> float:
    """Seconds since an image was pushed (0 when unknown): what sync and status count as waited for its scan and
    signature, as the Gate step counts from its first look (a few seconds after the push)."""
    if pushed_at is None:
        return 0.0
    pushed = pushed_at if pushed_at.tzinfo else pushed_at.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - pushed).total_seconds())


class GateProgress(BaseModel):
    """The Gate step's own part of the plan: what the Wait loop reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Literal["wait", "done"]
    first_look_at: datetime
    looks: int
    wait_seconds: int = 0
    digest: str | None = None
    waiting_for: str = ""  # with verdict "wait": what has not arrived yet, rule by rule


def _overridden(gates: Gates, decision: Decision, override: Override | None) -> Decision:
    if override is None or decision.verdict == "pass":
        return decision
    if not gates.allow_override:
        return Decision(
            decision.verdict, f"{decision.reason}; override refused: the rule does not allow_override"
        )
    who = override.requested_by or "unknown (not recorded in the input)"
    return Decision.passed(f"OVERRIDDEN by {who}: {override.reason} (the gates said: {decision.reason})")


def _target_decision(target: Target, decisions: Mapping[str, Decision]) -> Decision:
    """Pass when one selecting rule passes (or has no gates), else wait when one waits, else block."""
    own = [(rule, decisions.get(rule)) for rule in target.selecting_rules]
    if any(decision is None or decision.verdict == "pass" for _, decision in own):
        return Decision.passed("")
    reasons = "; ".join(f"rule {rule!r}: {d.reason}" for rule, d in own if d is not None)
    if any(d is not None and d.verdict == "wait" for _, d in own):
        return Decision.waiting(reasons)
    return Decision.blocked(reasons)


def _source_account(targets: list[Target], config: ReplicationConfig) -> str:
    """The account whose registry holds the image: the targets' source's (one plan has one source)."""
    named = next((t.source for t in targets if t.source), None)
    return named.split("/", 1)[0] if named else config.source.account


def _cut(reason: str) -> str:
    return reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 3] + "..."


def _record(
    target: Target, status: Literal["blocked", "failed"], error: str, cause: str, digest: str | None
) -> dict[str, Any]:
    return TargetResult(
        account=target.account,
        region=target.region,
        repository=target.repository,
        tag=target.tag,
        status=status,
        digest=digest,
        error=error,
        cause=fit(
            cause, REASON_LIMIT
        ),  # as JSON, escapes counted (a reason may quote a certificate's subject)
        source=target.source,
    ).model_dump(mode="json")


class GateStep:
    """Gate one plan; `ecr` reads scans (DescribeImageScanFindings), `registry` the source's signatures."""

    def __init__(
        self,
        config: ReplicationConfig,
        *,
        ecr: Any,
        registry: RegistryClient,
        now: datetime | None = None,
        poll_seconds: int = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.config = config
        self.ecr = ecr
        self.registry = registry
        self.now = now or datetime.now(UTC)
        self.poll_seconds = max(1, poll_seconds)
        self.gates = {rule.name: rule.gates for rule in config.rules if rule.gates is not None}

    def run(self, plan: Mapping[str, Any]) -> dict[str, Any]:
        """The plan after this look (see the module docstring)."""
        targets = [Target.model_validate(t) for t in plan["targets"]]
        override = Override.model_validate(plan["override"]) if plan.get("override") else None
        previous = GateProgress.model_validate(plan["gate"]) if plan.get("gate") else None
        first_look = previous.first_look_at if previous else self.now
        looks = (previous.looks if previous else 0) + 1
        waited = max(0.0, (self.now - first_look).total_seconds())
        used = self.used_rules(targets)
        repository, tag = str(plan["repository"]), str(plan["tag"])
        try:
            digest = self.registry.head_manifest(repository, tag)
            if digest is None:
                # A 404 is also what ECR answers for an image in its archive storage class: ask which.
                raise missing_image(
                    self.ecr,
                    f"{self.registry.registry}/{repository}:{tag}",
                    repository,
                    tag,
                    registry_id=self.config.source.account,
                )
            decisions = self.target_decisions(repository, digest, targets, waited=waited, override=override)
        except TRANSIENT:
            raise  # the state machine retries the Gate task on these (its Catch fails every target after)
        except (ReplicationError, ClientError, BotoCoreError) as error:
            return self._failed(plan, targets, error, first_look, looks)
        progress = {"first_look_at": first_look, "looks": looks, "digest": digest}
        if any(d.verdict == "wait" for d in decisions):
            waiting = _cut("; ".join(dict.fromkeys(d.reason for d in decisions if d.verdict == "wait")))
            gate = GateProgress(
                verdict="wait", wait_seconds=self._wait_seconds(used, waited), waiting_for=waiting, **progress
            )
            return {**plan, "gate": gate.model_dump(mode="json")}
        passing, blocked = [], list(plan.get("blocked") or [])
        for target, decision in zip(targets, decisions, strict=True):
            if decision.verdict == "pass":
                gated = any(rule in self.gates for rule in target.selecting_rules)
                passing.append(target.model_copy(update={"gated_digest": digest}) if gated else target)
            else:
                blocked.append(_record(target, "blocked", ImageBlocked.__name__, decision.reason, digest))
        # The seeds again among the targets that pass (a blocked seed would leave its Region waiting).
        return self._done(
            plan, seeded(passing, self.config), blocked, GateProgress(verdict="done", **progress)
        )

    def used_rules(self, targets: list[Target]) -> set[str]:
        """The gated rules among the rules selecting `targets` (none: nothing to gate)."""
        return {rule for t in targets for rule in t.selecting_rules if rule in self.gates}

    def target_decisions(
        self,
        repository: str,
        digest: str,
        targets: list[Target],
        *,
        waited: float = 0.0,
        override: Override | None = None,
    ) -> list[Decision]:
        """One decision per target for the manifest `digest`; reading errors propagate (ReplicationError,
        ClientError, BotoCoreError)."""
        gates = {rule: self.gates[rule] for rule in sorted(self.used_rules(targets))}
        decisions = gate_image(
            gates,
            repository,
            digest,
            ecr=self.ecr,
            registry=self.registry,
            registry_id=_source_account(targets, self.config),
            waited_seconds=waited,
            now=self.now,
        )
        by_rule = {rule: _overridden(gates[rule], d, override) for rule, d in decisions.items()}
        return [_target_decision(target, by_rule) for target in targets]

    def _wait_seconds(self, used: set[str], waited: float) -> int:
        """Until the next look: the poll interval, or less when a gate's wait ends sooner (at least 1 s)."""
        remaining = [bound - waited for rule in used for bound in self.gates[rule].wait_seconds]
        soonest = min((r for r in remaining if r > 0), default=self.poll_seconds)
        return int(max(1, min(self.poll_seconds, soonest + 1)))

    def _failed(
        self,
        plan: Mapping[str, Any],
        targets: list[Target],
        error: Exception,
        first_look: datetime,
        looks: int,
    ) -> dict[str, Any]:
        """The image could not be gated: targets of gated rules fail with the error; others go on."""
        passing, blocked = [], list(plan.get("blocked") or [])
        for target in targets:
            if all(rule in self.gates for rule in target.selecting_rules):
                name = (
                    type(error).__name__ if isinstance(error, ReplicationError) else GateCheckFailed.__name__
                )
                blocked.append(
                    _record(target, "failed", name, f"the gates could not be checked: {error}", None)
                )
            else:
                passing.append(target)
        gate = GateProgress(verdict="done", first_look_at=first_look, looks=looks)
        return self._done(plan, seeded(passing, self.config), blocked, gate)

    @staticmethod
    def _done(
        plan: Mapping[str, Any], passing: list[Target], blocked: list[dict[str, Any]], gate: GateProgress
    ) -> dict[str, Any]:
        return {
            **plan,
            "targets": [t.model_dump(mode="json") for t in passing],
            "target_count": len(passing),
            "blocked": blocked,
            "gate": gate.model_dump(mode="json"),
        }
