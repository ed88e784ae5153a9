"""Sync's promotion gates: which targets of a source image the rules' gates let through, as live replication
(`workflow.pipeline.gate`), each source's gates read once a run. No override here."""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from workflow.core.exceptions import GateCheckFailed, ReplicationError
from workflow.core.redaction import redact
from workflow.gates.decision import Decision
from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.payloads import Target
from workflow.ops.inventory import SourceImage
from workflow.ops.sync.actions import Action, ActionStatus, source_label
from workflow.ops.sync.report import SyncReport
from workflow.pipeline.gate import GateStep, waited_since

# What a target's refused verdict makes of it: blocked, or deferred while a scan a gate waits for is not complete.
OUTCOMES: tuple[tuple[str, ActionStatus], ...] = (("block", "blocked"), ("wait", "deferred"))


class SyncGates:
    """The gates of one run's images; `gate_step` makes a source's `GateStep` (called once a source)."""

    def __init__(
        self,
        config: ReplicationConfig,
        gate_step: Callable[[SourceConfig], GateStep],
        *,
        log: Callable[[str], None],
    ) -> None:
        self.config = config
        self.gate_step = gate_step
        self.log = log
        self._steps: dict[str, GateStep] = {}

    def _step(self, source: SourceConfig) -> GateStep:
        """The gates of one source's images: its scans and signatures, read where it is."""
        if source.name not in self._steps:
            self._steps[source.name] = self.gate_step(source)
        return self._steps[source.name]

    def allowed(
        self, image: SourceImage, source: SourceConfig, targets: list[Target], report: SyncReport
    ) -> set[int]:
        """The ids of the targets the gates let through; the others become one `gate` action per outcome
        (blocked or deferred), or one failed `gate` action when the gates cannot be checked."""
        if not targets or not self._step(source).used_rules(targets):
            return {id(t) for t in targets}
        try:
            decisions = self._step(source).target_decisions(
                image.repository, image.digest, targets, waited=waited_since(image.pushed_at)
            )
        except (ReplicationError, ClientError, BotoCoreError) as error:
            self._failed(image, source, targets, error, report)
            return set()
        self._refused(image, source, list(zip(targets, decisions, strict=True)), report)
        return {id(t) for t, d in zip(targets, decisions, strict=True) if d.verdict == "pass"}

    def _failed(
        self,
        image: SourceImage,
        source: SourceConfig,
        targets: list[Target],
        error: Exception,
        report: SyncReport,
    ) -> None:
        """The gates could not be checked: one failed `gate` action for all the targets."""
        name = type(error).__name__ if isinstance(error, ReplicationError) else GateCheckFailed.__name__
        failed = Action(
            "gate",
            image.repository,
            image.tag,
            image.digest,
            targets,
            status="failed",
            source=source_label(self.config, source),
        )
        failed.error = redact(f"{name}: the gates could not be checked: {error}")
        report.actions.append(failed)
        self.log(f"failed: {failed.describe()}")

    def _refused(
        self,
        image: SourceImage,
        source: SourceConfig,
        decided: list[tuple[Target, Decision]],
        report: SyncReport,
    ) -> None:
        """One `gate` action per outcome for the targets the gates do not pass, with their reasons."""
        refused = [(t, d) for t, d in decided if d.verdict != "pass"]
        for verdict, status in OUTCOMES:
            group = [(t, d) for t, d in refused if d.verdict == verdict]
            if group:
                action = Action(
                    "gate",
                    image.repository,
                    image.tag,
                    image.digest,
                    [t for t, _ in group],
                    status=status,
                    source=source_label(self.config, source),
                )
                action.error = "; ".join(dict.fromkeys(d.reason for _, d in group))
                report.actions.append(action)
                self.log(f"{status}: {action.describe()}")
