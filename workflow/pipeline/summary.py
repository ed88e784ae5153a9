"""Per-target results -> Summary: the outcome, one line per target, totals and the email text.

Step Functions counts the Summarize result whole against its 256 KiB payload quota ("Step Functions service
quotas"; States.DataLimitExceeded, which no Catch catches: no summary, no email, no events): the summary,
every line, the email text, the Fail state's cause and the replication events beside them. So each part
has a share, counted in characters of the JSON the Lambda runtime writes (non-ASCII escaped: the largest
form), and the worst case the config allows (the inline Map's 40 targets with every line and event, or a
distributed run's MAX_DESTINATIONS with FAILURES_SHOWN lines and its events in the bucket; 256-character
repository names, 128-character tags, every target failed or blocked with a long cause) stays well inside the
quota (tests/unit/test_summary_bounds.py):
- a line holds its identity whole (account, Region, repository, action, digest, error: each bounded by its
  grammar) and, within an equal share of LINES_BUDGET, its cause, runbook link and build log link;
- the email text is at most MESSAGE_BUDGET: the failures, the blocked targets and the table are listed
  while they fit, then counted ("... and N more"); every target is still in `lines` and in the events;
- the Fail state's cause is at most FAILURE_CAUSE_BUDGET; the override's texts at most OVERRIDE_TEXT_BUDGET;
- each replication event holds its identity and at most EVENT_REASON_BUDGET of a gate's reason
  (workflow.pipeline.announce).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflow.core.documents import load_json
from workflow.core.exceptions import ReferrerRefused, ReplicationFailed
from workflow.core.grammar import REPOSITORY_MAX, fit, json_size
from workflow.core.links import build_log_url, console_url, state_machine_arn_of
from workflow.core.redaction import redact
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
FAILURE_CAUSE_LIMIT = (
    30_000  # a Plan error's cause (workflow.pipeline.record.execution_error): the Fail state's
)
RESULT_LIMIT = 256 * 1024
MESSAGE_BUDGET = 10 * 1024
REFUSED_SHARE = 0.1  # of the message: destinations that refused referrers
REFUSED_REFERRERS_LIMIT = 512  # characters naming a line's refused referrers
DETAILS_SHARE = 0.5  # of the message: failures and blocked targets, then the table and the rest
FAILURE_CAUSE_BUDGET = 6 * 1024
LINES_BUDGET = 80 * 1024
OVERRIDE_TEXT_BUDGET = 512
# Each identity field of a line at most as long as its grammar allows (a digest: sha512:<128 hex>).
FIELD_LIMITS = {
    "account": 12,
    "region": 32,
    "repository": REPOSITORY_MAX,
    "digest": 135,
    "error": 128,
    "action": 80,
}
# One page at any scale: the message lists at most FAILURES_SHOWN failed (and as many blocked) destinations, the
# first DETAILED of them with their cause, runbook and build log, the others one line each; past that it says how
# many more and where they all are. The table of destinations is there for small runs only (TABLE_ROWS), and the
# summary's own `lines` keep the failed and blocked ones first, FAILURES_SHOWN at most, once a run is larger.
FAILURES_SHOWN = 50
DETAILED = 5
TABLE_ROWS = 40
COMPACT_CAUSE = 120
PAGE_LINES = 150
# Listing the failed destinations in the retry command (the console input and the CLI line) up to this many;
# past it the retry input is the one the Summarize step stored beside the results (RunDetails.retry_uri).
RETRY_LISTED = 10
COUNTED = "\0{}"  # _within's "how many more", counted before it is said
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
    """One target, as a person reads it (its tag is the summary's: one image per execution)."""

    account: str
    region: str
    repository: str
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
    # Referrers the destination refused (the image was copied without them): how many, and which; left out
    # when there are none, so a summary of many destinations is no larger.
    referrers_refused: int = Field(default=0, exclude_if=lambda count: not count)
    refused_referrers: str | None = Field(default=None, exclude_if=lambda named: named is None)

    source: str | None = None  # where the image came from (`account/region`)

    def destination(self, tag: str | None) -> str:
        """`account/region repository:tag`."""
        return f"{self.account}/{self.region} {self.repository}:{tag or '?'}"


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
    referrers_refused: int = 0  # destinations whose copy left out referrers the destination refused
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
    # Destinations not in `lines` (a run past TABLE_ROWS keeps only its failed and blocked ones, bounded).
    lines_omitted: int = 0
    source: str | None = None  # where the image is (`account/region`)


class RunDetails(_Model):
    """Where a run at scale keeps what one page cannot hold: every destination's result (the Distributed Map's
    ResultWriter manifest) and the input that re-runs exactly the failed destinations; and the run's estimated
    cost (workflow/pipeline/cost.py), as one line."""

    results_uri: str | None = None
    retry_uri: str | None = None
    cost_line: str | None = None


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
        data = load_json(cause or "")
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
    text = redact(_explain(cause))
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _explain(cause: str) -> str:
    try:
        data = load_json(cause)
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


def _line(
    result: TargetResult, runbook_url: str | None, share: int, cause_limit: int = CAUSE_LIMIT
) -> SummaryLine:
    """The line of one target: its identity whole, then its cause, runbook and build log links while the
    line stays within `share` characters of JSON."""
    limited = {
        name: fit(str(value), limit)
        for name, limit in FIELD_LIMITS.items()
        if (value := _field(result, name))
    }
    line = SummaryLine(
        account=limited["account"],
        region=limited["region"],
        repository=limited["repository"],
        action=limited["action"],
        digest=limited.get("digest"),
        bytes=result.bytes_copied,
        blobs_copied=result.blobs_copied,
        blobs_skipped=result.blobs_skipped,
        seconds=result.seconds,
        error=limited.get("error"),
        referrers_refused=result.referrers_refused,
        refused_referrers=fit(result.refused_referrers, REFUSED_REFERRERS_LIMIT)
        if result.refused_referrers
        else None,
        source=result.source,
    )
    build_arn = result.build_arn or _build_arn_in(result.cause)
    extras = {
        "cause": short_cause(result.cause, cause_limit),
        "runbook": section_url(result.error, runbook_url) if result.error else None,
        "build_log": build_log_url(build_arn) if build_arn else None,
    }
    for name, value in extras.items():
        room = share - json_size(line.model_dump(mode="json")) + len("null") - len('""')
        if value and name == "cause" and room > len("..."):
            line = line.model_copy(update={name: fit(value, room)})
        elif value and json_size(value) - len('""') <= room:
            line = line.model_copy(update={name: value})
    return line


def _field(result: TargetResult, name: str) -> str | None:
    return _action_text(result) if name == "action" else getattr(result, name)


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
        referrers_refused=sum(1 for r in results if r.referrers_refused),
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
    partly += ", REFERRERS REFUSED" if totals.referrers_refused else ""
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


def _table(lines: Sequence[SummaryLine], tag: str | None) -> list[str]:
    header = ("DESTINATION", "ACTION", "DIGEST", "BYTES", "SECONDS")
    rows = [
        (
            line.destination(tag),
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


def _within(entries: Sequence[list[str]], room: int, more: str) -> list[str]:
    """The entries (each some lines of text) while they fit in `room` characters of JSON, then one line
    saying how many more there are (`more`, formatted with that count)."""
    kept: list[str] = []
    for index, entry in enumerate(entries):
        size = sum(json_size(text) for text in entry)  # each line and its newline ("\n" as JSON)
        if size > room:
            return [*kept, more.format(len(entries) - index)]
        kept += entry
        room -= size
    return kept


def _size(texts: Sequence[str]) -> int:
    return sum(json_size(text) for text in texts)


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


def _bounded_hint(hint: list[str], room: int) -> list[str]:
    """The re-run hint when it fits in `room`; never cut (a partial list of destinations would re-run too
    few): else where to find the failed destinations."""
    if _size(hint) <= room:
        return hint
    return [
        "To retry only the failed destinations once the cause is fixed, start an execution with their accounts "
        'and Regions (the failed lines of this execution\'s output) as "destinations".'
    ]


def _rerun_stored(
    details: RunDetails | None,
    execution_arn: str | None,
    repository: str,
    tag: str,
    failed: int,
    *,
    dry_run: bool,
    source: str | None = None,
) -> list[str]:
    """The retry of many failed destinations: the stored input that names them all, else the whole image again
    (destinations that have it are `present` after one HEAD each; the failed ones are copied)."""
    machine = state_machine_arn_of(execution_arn) if execution_arn else "STATE_MACHINE_ARN"
    if details is not None and details.retry_uri:
        return [
            f"To retry only the {failed} failed destinations once the cause is fixed, start an execution with the "
            f"input stored at {details.retry_uri}:",
            f"  aws s3 cp {details.retry_uri} retry.json && aws stepfunctions start-execution "
            f"--state-machine-arn {machine} --input file://retry.json",
        ]
    return [
        f"To retry the {failed} failed destinations once the cause is fixed, run the image again (destinations "
        "that have it are reported present after one HEAD each):",
        f"  ecr-replicate start --state-machine-arn {machine} --repository {repository} --tag {tag}"
        f"{f' --source {source}' if source else ''}{' --dry-run' if dry_run else ''} --wait",
    ]


def _override_section(override: Override | None) -> list[str]:
    if override is None:
        return []
    who = override.requested_by or "not recorded in the input"
    return [
        "",
        "BREAK-GLASS OVERRIDE requested for the promotion gates (applied only by rules with allow_override: true):",
        f"  reason: {fit(override.reason, OVERRIDE_TEXT_BUDGET)}",
        f"  requested by: {fit(who, OVERRIDE_TEXT_BUDGET)} (as the starter recorded it; CloudTrail's "
        "StartExecution event names the caller)",
    ]


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _times(
    pushed_at: datetime | None, started_at: datetime | None, finished_at: datetime | None
) -> list[str]:
    """When the image was pushed, and the run started and finished, in UTC (what on-call reads first)."""
    lines = [
        f"{label} {_clock(moment)}"
        for label, moment in (("Pushed:  ", pushed_at), ("Started: ", started_at))
        if moment
    ]
    if finished_at is not None:
        took = f" ({_duration((finished_at - started_at).total_seconds())})" if started_at else ""
        lines.append(f"Finished: {_clock(finished_at)}{took}")
    return lines


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def _where(details: RunDetails | None, execution_arn: str | None) -> str:
    """Where every destination's result is: the results in the fan-out bucket, else the execution's history."""
    if details is not None and details.results_uri:
        return f"{details.results_uri} (the run's results, one JSON file per status)"
    return (
        f"the execution's history ({console_url(execution_arn)})"
        if execution_arn
        else "the execution's history"
    )


def _detailed(line: SummaryLine, tag: str | None, field: str) -> list[str]:
    entry = [f"- {line.destination(tag)}"]
    if field == "reason":
        entry.append(f"    reason: {line.cause or 'unknown'}")
    else:
        entry.append(f"    error: {line.error or 'unknown'}")
        if line.cause:
            entry.append(f"    cause: {line.cause}")
    if line.runbook:
        entry.append(f"    runbook: {line.runbook}")
    if line.build_log:
        entry.append(f"    build log: {line.build_log}")
    return entry


def _compact(line: SummaryLine, tag: str | None) -> str:
    cause = (line.cause or "").replace("\n", " ")
    cause = cause if len(cause) <= COMPACT_CAUSE else cause[: COMPACT_CAUSE - 3] + "..."
    error = f"{line.error}: " if line.error and line.action != "blocked" else ""
    return f"- {line.destination(tag)}: {error}{cause}".rstrip(": ")


def _listed(
    title: str, lines: Sequence[SummaryLine], tag: str | None, where: str, field: str, room: int
) -> list[str]:
    """A section naming the first FAILURES_SHOWN of `lines` within `room` characters of JSON: DETAILED in full,
    then one line each, then how many more and where they are; the runbook sections of the errors listed one
    line each."""
    if not lines:
        return []
    noun = "not copied" if field == "reason" else ""
    section = ["", f"{title} ({len(lines)}){f', {noun}' if noun else ''}:"]
    compact = lines[DETAILED:FAILURES_SHOWN]
    runbooks = dict.fromkeys((line.error, line.runbook) for line in compact if line.error and line.runbook)
    index = ["  Runbook:", *(f"    {error}: {url}" for error, url in list(runbooks)[:10])] if runbooks else []
    entries = [_detailed(line, tag, field) for line in lines[:DETAILED]]
    entries += [[_compact(line, tag)] for line in compact]
    hidden = max(0, len(lines) - FAILURES_SHOWN)
    more = "- ... and {} more: every one is in " + where
    shown = _within(entries, room - _size(section) - _size(index) - _size([more]), COUNTED)
    if shown and shown[-1].startswith(COUNTED[0]):
        hidden += int(shown.pop()[1:])
    if hidden:
        shown.append(more.format(hidden))
    section += shown + index
    return section


def _refused_section(
    lines: Sequence[SummaryLine], tag: str | None, runbook_url: str | None, room: int
) -> list[str]:
    """The destinations whose copy left out referrers they refused (HTTP 405), each with what it lacks, within
    `room` characters of JSON."""
    refused = [line for line in lines if line.referrers_refused]
    if not refused:
        return []
    name = ReferrerRefused.__name__
    section = [
        "",
        f"REFERRERS REFUSED by the destination ({name}), the image copied without them ({len(refused)}):",
    ]
    entries = [
        [
            f"- {line.destination(tag)}: {line.referrers_refused} "
            f"referrer{'s' if line.referrers_refused != 1 else ''}: {line.refused_referrers}"
        ]
        for line in refused
    ]
    runbook = f"    runbook: {section_url(name, runbook_url)}"
    section += _within(
        entries, room - _size(section) - _size([runbook]), "- ... and {} more: see the table below"
    )
    return [*section, runbook]


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
    runbook_url: str | None = None,
    times: Sequence[str] = (),
    details: RunDetails | None = None,
    source: str | None = None,
) -> str:
    """The email text, at most MESSAGE_BUDGET characters of JSON: the head, the failures and blocked targets
    (half the budget), the re-run hint, then the table and totals while they fit."""
    origin = f" from {source}" if source else ""
    body = [
        f"{'Dry run: ' if dry_run else ''}ECR replication of {image}{origin}: {outcome} ({_counts_text(totals)}).",
        *times,
    ]
    if dry_run:
        body.append(
            "Nothing was copied, tagged or created: 'would copy' and 'would tag' say what a real run would do."
        )
    if skipped_reason:
        body += ["", f"Nothing replicated: {fit(skipped_reason, OVERRIDE_TEXT_BUDGET)}"]
    if totals.superseded:
        body += ["", SUPERSEDED_TEXT]
    body += _override_section(override)
    where = _where(details, execution_arn)
    room = int(MESSAGE_BUDGET * DETAILS_SHARE) - _size(body)
    blocked = [line for line in lines if line.action == "blocked"]
    body += _listed("BLOCKED by promotion gates", blocked, tag, where, "reason", room // 2)
    failed = [line for line in lines if line.action == "failed"]
    body += _listed("FAILED", failed, tag, where, "error", int(MESSAGE_BUDGET * DETAILS_SHARE) - _size(body))
    body += _refused_section(lines, tag, runbook_url, int(MESSAGE_BUDGET * REFUSED_SHARE))
    tail = ["", details.cost_line] if details is not None and details.cost_line else []
    tail += ["", f"Execution: {console_url(execution_arn)}"] if execution_arn else []
    if failed and repository and tag:
        hint = _rerun_hint(
            repository, tag, failed, execution_arn, dry_run=dry_run, action=action, source=source
        )
        stored = details is not None and details.retry_uri is not None
        # A delete is retried by its input only (never `start`, which replicates): listed, or the stored one.
        if len(failed) > RETRY_LISTED and (action != "delete" or stored):
            hint = _rerun_stored(
                details, execution_arn, repository, tag, len(failed), dry_run=dry_run, source=source
            )
        tail += ["", *_bounded_hint(hint, (MESSAGE_BUDGET - _size(body) - _size(tail)) // 2)]
    if lines:
        totals_line = (
            f"Totals: {_human_bytes(totals.bytes_copied)} copied, {totals.blobs_copied} blob(s) copied, "
            f"{totals.blobs_skipped} blob(s) already present, {totals.seconds:.1f} s of copying."
        )
        if len(lines) <= TABLE_ROWS:
            room = (
                MESSAGE_BUDGET
                - _size(body)
                - _size(tail)
                - _size(["", "Destinations:", "", totals_line])
                - 200
            )
            rows = [[row] for row in _table(lines, tag)]
            more = "  ... and {} more destinations: every one is in " + where
            body += ["", "Destinations:", *_within(rows, room, more), "", totals_line]
        else:
            body += ["", f"Every destination's result: {where}", "", totals_line]
    return fit("\n".join(body + tail) + "\n", MESSAGE_BUDGET)


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
    pushed_at: datetime | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    details: RunDetails | None = None,
    source: str | None = None,
) -> Summary:
    """Build the Summary of one execution from its per-target records, within its shares of Step Functions'
    payload quota (see the module docstring); `source`: where the image is, else the records' source.

    Each failed line links its error's runbook section under `runbook_url` (default: the runbook on GitHub
    at this version) and, for a copy build, the build's log. The email's head says when the image was
    pushed and the run started and finished (UTC), of what is given. `details`: where a run at scale keeps
    every result and its retry input, which the message names instead of listing what one page cannot hold.
    """
    outcome = outcome_of(results)
    source = source or next((result.source for result in results if result.source), None)
    lines = lines_of(results, runbook_url)
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
        runbook_url=runbook_url,
        times=_times(pushed_at, started_at, finished_at),
        details=details,
        source=source,
    )
    failure_cause = None
    if outcome in ("FAILED", "PARTIAL"):
        failure_cause = fit(f"{subject}\n\n{message}", FAILURE_CAUSE_BUDGET)
    return Summary(
        outcome=outcome,
        repository=repository,
        tag=tag,
        dry_run=dry_run,
        action=action,
        subject=subject,
        message=message,
        # A blocked release, or one a destination took without some referrers, is always emailed, whatever
        # notifications.on says.
        notify=outcome in ("FAILED", "PARTIAL")
        or notify_on == "always"
        or totals.blocked > 0
        or totals.referrers_refused > 0,
        lines=kept_lines(lines),
        totals=totals,
        execution_url=console_url(execution_arn) if execution_arn else None,
        failure_cause=failure_cause,
        override=_bounded_override(override),
        lines_omitted=len(lines) - len(kept_lines(lines)),
        source=source,
    )


def _bounded_override(override: Override | None) -> Override | None:
    """The override with its texts within OVERRIDE_TEXT_BUDGET each (the summary repeats them)."""
    if override is None:
        return None
    requested_by = override.requested_by and fit(override.requested_by, OVERRIDE_TEXT_BUDGET)
    return override.model_copy(
        update={"reason": fit(override.reason, OVERRIDE_TEXT_BUDGET), "requested_by": requested_by}
    )


def lines_of(results: Sequence[TargetResult], runbook_url: str | None = None) -> list[SummaryLine]:
    """One line per record, causes cut shorter the more there are (CAUSES_LIMIT in all, CAUSE_MIN each), each
    within an equal share of LINES_BUDGET."""
    failed = sum(1 for result in results if result.cause)
    cause_limit = max(CAUSE_MIN, min(CAUSE_LIMIT, CAUSES_LIMIT // max(failed, 1)))
    share = LINES_BUDGET // max(len(results), 1)
    return [_line(result, runbook_url, share, cause_limit) for result in results]


def kept_lines(lines: Sequence[SummaryLine]) -> list[SummaryLine]:
    """The lines a summary keeps: all of a run of at most TABLE_ROWS, else its failed and blocked ones first,
    FAILURES_SHOWN at most (the rest are in the run's results)."""
    if len(lines) <= TABLE_ROWS:
        return list(lines)
    notable = [line for line in lines if line.action in ("failed", "blocked")]
    return notable[:FAILURES_SHOWN]
