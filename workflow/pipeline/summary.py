"""Per-target results -> Summary: the outcome, one line per target, totals and the email text."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from workflow.core.exceptions import ReplicationFailed
from workflow.core.links import build_log_url, console_url, state_machine_arn_of
from workflow.models.payloads import Override, RequestAction, TargetResult
from workflow.pipeline.runbook import section_url

Outcome = Literal["SUCCEEDED", "PARTIAL", "FAILED", "SKIPPED", "BLOCKED"]
NotifyOn = Literal["failure", "always"]

FAILURE_ERROR = ReplicationFailed.__name__
SUBJECT_LIMIT = 99
CAUSE_LIMIT = 500
# All lines' causes together: with many failures each is cut shorter (never below CAUSE_MIN), so the
# summary and the replication events beside it stay well inside Step Functions' 256 KiB state.
CAUSES_LIMIT = 25_000
CAUSE_MIN = 200
FAILURE_CAUSE_LIMIT = 30_000
FAILURES_LIMIT = 40_000  # characters of failure details in a message; the table still lists every target
STATUS_ORDER = (
    "copied",
    "tagged",
    "present",
    "superseded",
    "deleted",
    "kept",
    "absent",
    "planned",
    "failed",
    "blocked",
)
SUPERSEDED_TEXT = (
    "Superseded: the source tag was pushed again before this run put it, so the image was copied by digest "
    "and the tag left to the newer push's own run (the newest push wins)."
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SummaryLine(_Model):
    """One target, as a person reads it."""

    destination: str
    account: str
    region: str
    repository: str
    tag: str
    action: str
    digest: str | None = None
    bytes: int = 0
    blobs_copied: int = 0
    blobs_skipped: int = 0
    seconds: float = 0.0
    error: str | None = None
    cause: str | None = None
    runbook: str | None = None
    build_log: str | None = None
    source: str | None = None  # where the image came from (`account/region`)


class Totals(_Model):
    """Counts per status, and the bytes, blobs and seconds of all targets together."""

    targets: int = 0
    copied: int = 0
    tagged: int = 0
    present: int = 0
    superseded: int = 0
    deleted: int = 0
    kept: int = 0
    absent: int = 0
    planned: int = 0
    failed: int = 0
    blocked: int = 0
    bytes_copied: int = 0
    blobs_copied: int = 0
    blobs_skipped: int = 0
    seconds: float = 0.0


class Summary(_Model):
    """What the Summarize state returns; Notify publishes `subject` and `message` when `notify`."""

    outcome: Outcome
    repository: str | None
    tag: str | None
    dry_run: bool = False
    action: RequestAction = "replicate"
    subject: str
    message: str
    notify: bool
    lines: list[SummaryLine]
    totals: Totals
    execution_url: str | None = None
    failure_cause: str | None = None
    override: Override | None = None
    source: str | None = None  # where the image is (`account/region`)


def outcome_of(results: Sequence[TargetResult]) -> Outcome:
    """SKIPPED without targets, BLOCKED when a gate refused all; of the others: FAILED when all failed,
    PARTIAL when some failed, else SUCCEEDED (a run partly blocked says so in its subject)."""
    if not results:
        return "SKIPPED"
    rest = [result for result in results if result.status != "blocked"]
    if not rest:
        return "BLOCKED"
    failed = sum(1 for result in rest if result.status == "failed")
    if failed == len(rest):
        return "FAILED"
    return "PARTIAL" if failed else "SUCCEEDED"


def _build_arn_in(cause: str | None) -> str | None:
    """The `Arn` of a CodeBuild Build carried as a cause (a failed `.sync` build), if it is one."""
    try:
        data = json.loads(cause or "")
    except ValueError:
        return None
    build = data.get("Build", data) if isinstance(data, dict) else None
    arn = build.get("Arn") if isinstance(build, dict) else None
    return arn if isinstance(arn, str) else None


def short_cause(cause: str | None, limit: int = CAUSE_LIMIT) -> str | None:
    """A readable, bounded cause.

    A Lambda error payload gives its errorMessage; a CodeBuild Build (a failed `.sync` build) gives
    its id, status, failing phase and log link; anything else is the text itself, cut at `limit`.
    """
    if cause is None:
        return None
    text = _explain(cause)
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _explain(cause: str) -> str:
    try:
        data = json.loads(cause)
    except ValueError:
        return cause.strip()
    if not isinstance(data, dict):
        return cause.strip()
    if "errorMessage" in data:
        return str(data["errorMessage"]).strip()
    build = data.get("Build", data)
    if isinstance(build, dict) and "BuildStatus" in build:
        return _explain_build(build)
    return cause.strip()


def _explain_build(build: dict[str, Any]) -> str:
    text = f"copy build {build.get('Id', '?')} ended {build.get('BuildStatus')}"
    for phase in build.get("Phases") or []:
        if isinstance(phase, dict) and phase.get("PhaseStatus") not in (None, "SUCCEEDED"):
            contexts = "; ".join(
                str(c.get("Message"))
                for c in phase.get("Contexts") or []
                if isinstance(c, dict) and c.get("Message")
            )
            text += f" in phase {phase.get('PhaseType')}" + (f": {contexts}" if contexts else "")
            break
    link = (build.get("Logs") or {}).get("DeepLink")
    return text + (f"; logs: {link}" if link else "")


def _action_text(result: TargetResult) -> str:
    """`copied`, `would tag`, `kept (moved since)`: what happened at one destination."""
    if result.planned_action:
        return f"would {result.planned_action}"
    return f"{result.status} ({result.kept_reason})" if result.kept_reason else result.status


def _line(result: TargetResult, runbook_url: str | None, cause_limit: int = CAUSE_LIMIT) -> SummaryLine:
    build_arn = result.build_arn or _build_arn_in(result.cause)
    return SummaryLine(
        destination=f"{result.account}/{result.region} {result.repository}:{result.tag}",
        account=result.account,
        region=result.region,
        repository=result.repository,
        tag=result.tag,
        action=_action_text(result),
        digest=result.digest,
        bytes=result.bytes_copied,
        blobs_copied=result.blobs_copied,
        blobs_skipped=result.blobs_skipped,
        seconds=result.seconds,
        error=result.error,
        cause=short_cause(result.cause, cause_limit),
        runbook=section_url(result.error, runbook_url) if result.error else None,
        build_log=build_log_url(build_arn) if build_arn else None,
        source=result.source,
    )


def _totals(results: Sequence[TargetResult]) -> Totals:
    counts = Counter(result.status for result in results)
    return Totals(
        targets=len(results),
        copied=counts["copied"],
        tagged=counts["tagged"],
        present=counts["present"],
        superseded=counts["superseded"],
        deleted=counts["deleted"],
        kept=counts["kept"],
        absent=counts["absent"],
        planned=counts["planned"],
        failed=counts["failed"],
        blocked=counts["blocked"],
        bytes_copied=sum(r.bytes_copied for r in results),
        blobs_copied=sum(r.blobs_copied for r in results),
        blobs_skipped=sum(r.blobs_skipped for r in results),
        seconds=round(sum(r.seconds for r in results), 3),
    )


def _counts_text(totals: Totals) -> str:
    if not totals.targets:
        return "no destinations"
    parts = [f"{getattr(totals, status)} {status}" for status in STATUS_ORDER if getattr(totals, status)]
    return f"{totals.targets} destination{'s' if totals.targets != 1 else ''}: {', '.join(parts)}"


def _ascii(text: str) -> str:
    """SNS subjects must be printable ASCII on one line."""
    cleaned = "".join(ch if " " <= ch <= "~" else "?" for ch in text.replace("\n", " "))
    return cleaned.strip()


def _subject_counts(totals: Totals) -> str:
    if not totals.targets:
        return "nothing to replicate"
    if totals.failed:
        plural = "s" if totals.targets != 1 else ""
        blocked = f", {totals.blocked} blocked" if totals.blocked else ""
        return f"{totals.failed} of {totals.targets} destination{plural} failed{blocked}"
    return ", ".join(f"{getattr(totals, s)} {s}" for s in STATUS_ORDER if getattr(totals, s))


def _subject(outcome: Outcome, image: str, totals: Totals, dry_run: bool) -> str:
    partly = ", PARTLY BLOCKED" if totals.blocked and outcome != "BLOCKED" else ""
    prefix = f"{'[dry run] ' if dry_run else ''}ECR replication {outcome}{partly}: "
    counts = f" ({_subject_counts(totals)})"
    room = SUBJECT_LIMIT - len(prefix) - len(counts)
    if len(image) > room:
        keep = max(room - 3, 8)
        image = image[: keep // 2] + "..." + image[len(image) - (keep - keep // 2) :]
    subject = _ascii(prefix + image + counts)
    return subject if len(subject) <= SUBJECT_LIMIT else subject[: SUBJECT_LIMIT - 3] + "..."


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def _table(lines: Sequence[SummaryLine]) -> list[str]:
    header = ("DESTINATION", "ACTION", "DIGEST", "BYTES", "SECONDS")
    rows = [
        (
            line.destination,
            line.action,
            (line.digest or "-")[:19],
            _human_bytes(line.bytes) if line.bytes else "-",
            f"{line.seconds:.1f}" if line.seconds else "-",
        )
        for line in lines
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in (header, *rows)
    ]


def _rerun_hint(
    repository: str,
    tag: str,
    failed: Sequence[SummaryLine],
    execution_arn: str | None,
    *,
    dry_run: bool,
    action: RequestAction = "replicate",
    source: str | None = None,
) -> list[str]:
    """The input (and CLI line) that re-runs only the failed destinations, as a dry run again if this was one.

    A delete is re-run by its input only (with the digest the tag had), under the same checks. The input names
    the image's source, which a config with several sources may need.
    """
    destinations = [{"account": line.account, "region": line.region} for line in failed]
    request: dict[str, object] = {"repository": repository, "tag": tag, "destinations": destinations}
    if source:
        account, _, region = source.partition("/")
        request["source"] = {"account": account, "region": region}
    if dry_run:
        request["dryRun"] = True
    if action == "delete":
        request = {**request, "action": "delete", "digest": failed[0].digest}
        return [
            "To retry the delete at the failed destinations once the cause is fixed, start an execution with:",
            f"  {json.dumps(request)}",
        ]
    cli_destinations = " ".join(f"--destination {line.account}:{line.region}" for line in failed)
    if source:
        cli_destinations = f"--source {source} {cli_destinations}"
    machine = state_machine_arn_of(execution_arn) if execution_arn else "STATE_MACHINE_ARN"
    return [
        "To retry only the failed destinations once the cause is fixed, start an execution with:",
        f"  {json.dumps(request)}",
        "or run:",
        f"  ecr-replicate start --state-machine-arn {machine} --repository {repository} --tag {tag} "
        f"{cli_destinations}{' --dry-run' if dry_run else ''} --wait",
    ]


def _override_section(override: Override | None) -> list[str]:
    if override is None:
        return []
    who = override.requested_by or "not recorded in the input"
    return [
        "",
        "BREAK-GLASS OVERRIDE requested for the promotion gates (applied only by rules with allow_override: true):",
        f"  reason: {override.reason}",
        f"  requested by: {who} (as the starter recorded it; CloudTrail's StartExecution event names the caller)",
    ]


def _blocked_section(lines: Sequence[SummaryLine]) -> list[str]:
    blocked = [line for line in lines if line.action == "blocked"]
    if not blocked:
        return []
    section = ["", f"BLOCKED by promotion gates ({len(blocked)}), not copied:"]
    for line in blocked:
        section += [f"- {line.destination}", f"    reason: {line.cause or 'unknown'}"]
        if line.runbook:
            section.append(f"    runbook: {line.runbook}")
    return section


def _message(
    outcome: Outcome,
    image: str,
    lines: Sequence[SummaryLine],
    totals: Totals,
    *,
    dry_run: bool,
    skipped_reason: str | None,
    execution_arn: str | None,
    repository: str | None,
    tag: str | None,
    action: RequestAction = "replicate",
    override: Override | None = None,
    source: str | None = None,
) -> str:
    origin = f" from {source}" if source else ""
    body = [
        f"{'Dry run: ' if dry_run else ''}ECR replication of {image}{origin}: {outcome} ({_counts_text(totals)})."
    ]
    if dry_run:
        body.append(
            "Nothing was copied, tagged or created: 'would copy' and 'would tag' say what a real run would do."
        )
    if skipped_reason:
        body += ["", f"Nothing replicated: {skipped_reason}"]
    if totals.superseded:
        body += ["", SUPERSEDED_TEXT]
    body += _override_section(override) + _blocked_section(lines)
    failed = [line for line in lines if line.action == "failed"]
    if failed:
        body += ["", f"FAILED ({len(failed)}):"]
        room = FAILURES_LIMIT
        for shown, line in enumerate(failed):
            entry = [f"- {line.destination}", f"    error: {line.error or 'unknown'}"]
            if line.cause:
                entry.append(f"    cause: {line.cause}")
            if line.runbook:
                entry.append(f"    runbook: {line.runbook}")
            if line.build_log:
                entry.append(f"    build log: {line.build_log}")
            room -= sum(len(text) + 1 for text in entry)
            if room < 0:
                body.append(f"- ... and {len(failed) - shown} more: see the table below and the execution")
                break
            body += entry
    if lines:
        body += ["", "Destinations:", *_table(lines)]
        body += [
            "",
            f"Totals: {_human_bytes(totals.bytes_copied)} copied, {totals.blobs_copied} blob(s) copied, "
            f"{totals.blobs_skipped} blob(s) already present, {totals.seconds:.1f} s of copying.",
        ]
    if execution_arn:
        body += ["", f"Execution: {console_url(execution_arn)}"]
    if failed and repository and tag:
        body += [
            "",
            *_rerun_hint(
                repository, tag, failed, execution_arn, dry_run=dry_run, action=action, source=source
            ),
        ]
    return "\n".join(body) + "\n"


def summarize(
    results: Sequence[TargetResult],
    *,
    repository: str | None,
    tag: str | None,
    dry_run: bool = False,
    skipped_reason: str | None = None,
    execution_arn: str | None = None,
    notify_on: NotifyOn = "failure",
    runbook_url: str | None = None,
    action: RequestAction = "replicate",
    override: Override | None = None,
    source: str | None = None,
) -> Summary:
    """Build the Summary of one execution from its per-target records (`source`: where the image is, else
    the records' source).

    Each failed line links its error's runbook section under `runbook_url` (default: the runbook's path
    in the repository) and, for a copy build, the build's log.
    """
    outcome = outcome_of(results)
    source = source or next((result.source for result in results if result.source), None)
    failed = sum(1 for result in results if result.cause)
    cause_limit = max(CAUSE_MIN, min(CAUSE_LIMIT, CAUSES_LIMIT // max(failed, 1)))
    lines = [_line(result, runbook_url, cause_limit) for result in results]
    totals = _totals(results)
    image = f"{repository or '?'}:{tag or '?'}"
    subject = _subject(outcome, image, totals, dry_run)
    message = _message(
        outcome,
        image,
        lines,
        totals,
        dry_run=dry_run,
        skipped_reason=skipped_reason,
        execution_arn=execution_arn,
        repository=repository,
        tag=tag,
        action=action,
        override=override,
        source=source,
    )
    failure_cause = None
    if outcome in ("FAILED", "PARTIAL"):
        failure_cause = f"{subject}\n\n{message}"
        if len(failure_cause) > FAILURE_CAUSE_LIMIT:
            failure_cause = failure_cause[: FAILURE_CAUSE_LIMIT - 3] + "..."
    return Summary(
        outcome=outcome,
        repository=repository,
        tag=tag,
        dry_run=dry_run,
        action=action,
        subject=subject,
        message=message,
        # A blocked release is always emailed, whatever notifications.on says.
        notify=outcome in ("FAILED", "PARTIAL") or notify_on == "always" or totals.blocked > 0,
        lines=lines,
        totals=totals,
        execution_url=console_url(execution_arn) if execution_arn else None,
        failure_cause=failure_cause,
        override=override,
        source=source,
    )
