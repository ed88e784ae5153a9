"""`ecr-replicate demo`: the real workflow replicating a filtered image on this machine, no AWS account.

The demo's rule is gated (scan at CRITICAL, and a cosign key the demo makes at start; scans come from the
runtime's scan fake).

1. build and push a two-platform `app:release-1.0.0` and a one-platform `app:dev-42` to the source; as CI
   does, the release is signed a few seconds after its push, and its platform images' scans (clean) show
   only after a few seconds too (ECR answers ScanNotFoundException right after a push);
2. send both ECR push events through EventBridge (moto), with the rule pattern the CDK app synthesizes;
3. start executions for what matched, and only that;
4. print each state as it runs (the Gate waits in its Wait loop until the signature and the scans are
   there, then passes), then the summary email;
5. check the result independently with skopeo;
6. push `release-1.0.0` again: the second run finds it present and copies nothing;
7. restart one destination's registry read-only and replicate `release-1.1.0`: the run is PARTIAL, its
   email links the failed destination's runbook section, and `ecr-replicate status` says where it is missing;
8. repair: the registry accepts pushes again, `ecr-replicate sync` starts one execution for the missing
   destination, and `status` shows the image everywhere;
9. push `release-1.2.0` unsigned and with a CRITICAL finding in its arm64 image: the Gate step blocks it
   before any destination is touched (a block does not wait for the signature), the BLOCKED email names the
   platform and the finding, it is at no destination and `status` says blocked.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from workflow.local.images import Image, build_image, sha256
from workflow.local.registries import RuntimeSetupError
from workflow.local.runtime import DEMO_CONFIG, STATE_MACHINE, Execution, LocalRuntime
from workflow.local.scans import complete, finding
from workflow.local.signing import new_key, public_pem, push_signature
from workflow.models.config import parse_config
from workflow.ops.status import StatusReport, image_status
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync
from workflow.pipeline.plan import event_pattern
from workflow.pipeline.runbook import recordable_error_names, section_url

REPOSITORY = "app"
RELEASE_TAG = "release-1.0.0"
REPAIR_TAG = "release-1.1.0"
BLOCKED_TAG = "release-1.2.0"
CRITICAL = finding("CVE-2026-1234", "CRITICAL", "openssl", "3.0.2")
DEV_TAG = "dev-42"
PLATFORMS = ("linux/amd64", "linux/arm64")
SIGN_AFTER_SECONDS = 4.0  # CI signs after it pushes: the release's signature arrives this long after its push
Printer = Callable[[str], None]


class DemoFailure(Exception):
    """One thing the demo expected did not hold; the message is the one-line reason."""


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024:.1f} KiB" if nbytes < 1024 * 1024 else f"{nbytes / 1024 / 1024:.1f} MiB"


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


class StatePrinter:
    """Turns execution-history events into one readable line per state entered, plus key results."""

    def __init__(self, out: Printer) -> None:
        self.out = out
        self.started: datetime | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        """Print what one history event says, if anything."""
        self.started = self.started or event["timestamp"]
        clock = f"[{(event['timestamp'] - self.started).total_seconds():5.1f}s]"
        kind = event["type"]
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            self._line(clock, details["name"], _json(details.get("input")), None)
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            result = self._result(details["name"], _json(details.get("output")))
            if result:
                self._line(clock, "", _json(details.get("output")), result)
        elif kind in ("TaskFailed", "LambdaFunctionFailed"):
            details = (
                event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
            )
            cause = _json(details.get("cause"))
            message = cause.get("errorMessage") if isinstance(cause, dict) else None
            self.out(f"  {clock}     ! {details.get('error')}{': ' + message if message else ''}")
        elif kind in ("ExecutionSucceeded", "ExecutionFailed"):
            self.out(f"  {clock} execution {'SUCCEEDED' if kind == 'ExecutionSucceeded' else 'FAILED'}")

    def _line(self, clock: str, name: str, data: Any, result: str | None) -> None:
        target = None
        if isinstance(data, dict):  # a Map iteration's state, or the record it ends with
            target = data.get("target") or (data if {"status", "account", "region"} <= data.keys() else None)
        label = f"{target['account']}/{target['region']}  " if isinstance(target, dict) else ""
        indent = "    " if label else ""
        text = f"  -> {result}" if result else name
        self.out(f"  {clock} {indent}{label}{text}")

    @staticmethod
    def _result(state: str, output: Any) -> str | None:
        if not isinstance(output, dict):
            return None
        if state == "Plan" and isinstance(output.get("plan"), dict):
            plan = output["plan"]
            targets = [f"{t['account']}/{t['region']}" for t in plan.get("targets", [])]
            return (
                f"{len(targets)} destination(s): {', '.join(targets)}"
                if targets
                else plan.get("skipped_reason")
            )
        if state == "Gate" and isinstance(output.get("plan"), dict):
            gated = output["plan"]
            progress = gated.get("gate") or {}
            if progress.get("verdict") == "wait":
                return (
                    f"waiting for {progress.get('waiting_for') or 'a scan or a signature'}: "
                    f"look again in {progress.get('wait_seconds')} s"
                )
            blocked = [f"{b['account']}/{b['region']}: {b.get('cause')}" for b in gated.get("blocked", [])]
            return f"{len(gated.get('targets', []))} destination(s) pass" + "".join(
                f"\n{' ' * 13}blocked {line}" for line in blocked
            )
        if state == "Precheck" and isinstance(output.get("precheck"), dict):
            precheck = output["precheck"]
            if precheck.get("copy_needed"):
                return "not at the destination yet: copy needed"
            return f"{precheck.get('record', {}).get('status')}: no copy needed"
        if state == "Record" and output.get("status") in ("copied", "failed"):
            if output["status"] == "failed":
                return f"copy failed: {output.get('error')}: {output.get('cause')}"
            return (
                f"CodeBuild job: {output.get('status')}, {output.get('blobs_copied')} blob(s), "
                f"{_size(int(output.get('bytes_copied', 0)))} in {output.get('seconds')} s"
            )
        if state == "Summarize" and isinstance(output.get("summary"), dict):
            return f"outcome {output['summary'].get('outcome')}"
        return None


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60, check=False)


def verify_present(host: str, repository: str, tag: str, image: Image) -> str:
    """Check with skopeo that `host/repository:tag` is `image`: same index digest, every platform."""
    reference = f"docker://{host}/{repository}:{tag}"
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", reference)
    if raw.returncode != 0:
        raise DemoFailure(f"skopeo cannot read {host}/{repository}:{tag}: {raw.stderr.strip()}")
    digest = sha256(raw.stdout.encode())
    if digest != image.digest:
        raise DemoFailure(f"{host}/{repository}:{tag} has digest {digest}, the source has {image.digest}")
    for platform in image.platforms:
        os_name, _, architecture = platform.partition("/")
        inspected = _skopeo(
            "inspect",
            "--tls-verify=false",
            "--override-os",
            os_name,
            "--override-arch",
            architecture,
            reference,
        )
        if inspected.returncode != 0:
            raise DemoFailure(
                f"skopeo cannot read {platform} of {host}/{repository}:{tag}: {inspected.stderr.strip()}"
            )
        details = json.loads(inspected.stdout)
        if (details.get("Os"), details.get("Architecture")) != (os_name, architecture):
            raise DemoFailure(f"{host}/{repository}:{tag} has no {platform} image")
    return digest


def verify_absent(host: str, repository: str, tag: str) -> None:
    """Check with skopeo that `host/repository:tag` does not exist (and that the registry answered)."""
    result = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{host}/{repository}:{tag}")
    if result.returncode == 0:
        raise DemoFailure(f"{host}/{repository}:{tag} exists, but {tag} should not be there")
    if "manifest unknown" not in result.stderr and "not found" not in result.stderr:
        raise DemoFailure(f"skopeo could not check {host}/{repository}:{tag}: {result.stderr.strip()}")


class Demo:
    """The demo's steps on one running LocalRuntime."""

    def __init__(self, runtime: LocalRuntime, out: Printer, key: ec.EllipticCurvePrivateKey) -> None:
        self.runtime = runtime
        self.out = out
        self.key = key
        self.config = parse_config(runtime.config_data)
        self.destinations = [
            (d.account, region)
            for rule in self.config.rules
            for d in rule.account_destinations
            for region in d.regions
        ]

    def run(self) -> None:
        """All six steps; raises DemoFailure with the reason at the first thing that does not hold."""
        release = build_image("demo release", PLATFORMS)
        dev = build_image("demo dev build", ("linux/amd64",))
        self.describe()
        self.step(1, "Push two images to the source registry; CI signs the release after its push")
        self.push(RELEASE_TAG, release, signed=False)
        self.push(DEV_TAG, dev, signed=False)
        signer = self.sign_later(RELEASE_TAG, release, SIGN_AFTER_SECONDS)
        executions = self.send_events([(RELEASE_TAG, release), (DEV_TAG, dev)], expect=[RELEASE_TAG])
        self.step(4, "Run the state machine (moto's interpreter, the real ASL and handlers)")
        self.out(
            "  Plan (Lambda) -> Gate (Lambda: scan findings and signatures) -> Replicate: for each destination,"
        )
        self.out(
            "  Precheck (Lambda) -> Copy (CodeBuild job running `ecr-replicate copy`) -> Summarize (Lambda) ->"
        )
        self.out("  Notify (SNS). States as they run:")
        execution = self.watch(executions[0])
        signer.join()
        if execution.status != "SUCCEEDED":
            raise DemoFailure(
                f"the execution for {RELEASE_TAG} ended {execution.status}: {execution.error} {execution.cause}"
            )
        if execution.states_entered().count("GateWait") < 1:
            raise DemoFailure(
                f"{RELEASE_TAG} replicated without the Gate waiting for its signature and scans"
            )
        self.print_email()
        self.step(5, "Check the destinations independently with skopeo")
        for account, region in self.destinations:
            host = self.runtime.registry_of(account, region).host
            digest = verify_present(host, REPOSITORY, RELEASE_TAG, release)
            self.out(
                f"  ok  {account}/{region}: {REPOSITORY}:{RELEASE_TAG} = {digest} ({', '.join(PLATFORMS)})"
            )
            verify_absent(host, REPOSITORY, DEV_TAG)
            self.out(f"  ok  {account}/{region}: {REPOSITORY}:{DEV_TAG} is not there")
        self.step(6, f"Push {RELEASE_TAG} again: the second run must copy nothing")
        builds_before = len(self.runtime.codebuild.builds)
        self.runtime.push(REPOSITORY, RELEASE_TAG, release)
        again = self.watch(self.send_events([(RELEASE_TAG, release)], expect=[RELEASE_TAG], step=None)[0])
        statuses = [line.get("action") for line in (again.output or {}).get("lines", [])]
        if again.status != "SUCCEEDED" or statuses != ["present"] * len(self.destinations):
            raise DemoFailure(
                f"the second run ended {again.status} with {statuses}, expected every destination present"
            )
        if len(self.runtime.notifications()) != 1:
            raise DemoFailure("the second run did not publish exactly one summary")
        if len(self.runtime.codebuild.builds) != builds_before:
            raise DemoFailure(
                "the second run started a CodeBuild copy although the image was already present"
            )
        self.out(
            f"  ok  every destination: present, no CodeBuild job started ({builds_before} job(s) in total)"
        )
        RepairScene(self).run(build_image("demo release 1.1.0", PLATFORMS))
        GateScene(self).run(build_image("demo release 1.2.0", PLATFORMS))

    def push(
        self, tag: str, image: Image, *, signed: bool, findings: dict[str, list[dict[str, Any]]] | None = None
    ) -> None:
        """Push to the source; sign it with the demo's key if `signed`; each platform image's scan completes
        (a few seconds later) with its `findings` (by platform; none by default)."""
        self.runtime.push(REPOSITORY, tag, image)
        self.out(
            f"  {REPOSITORY}:{tag:<14} {', '.join(image.platforms):<24} {image.digest}  {_size(image.size)}"
        )
        if signed:
            self.sign(tag, image)
        for platform, manifest in zip(image.platforms, image.manifests or [image.top], strict=True):
            found = (findings or {}).get(platform, [])
            self.runtime.scans.set(REPOSITORY, manifest.digest, complete(found))
            shown = ", ".join(f"{f['name']} {f['severity']}" for f in found) or "no findings"
            self.out(f"  {'':<18} {platform} scan (ECR scans platform images): {shown}")

    def sign(self, tag: str, image: Image) -> None:
        """Sign `image` with the demo's cosign key, as CI does once it pushed it."""
        source = self.runtime.registry("source")
        signature = push_signature(source.url, source.host, REPOSITORY, image.digest, self.key)
        self.out(
            f"  {'':<18} CI signed {REPOSITORY}:{tag} with the demo's cosign key: {REPOSITORY}:{signature}"
        )

    def sign_later(self, tag: str, image: Image, seconds: float) -> threading.Thread:
        """Sign `image` `seconds` from now, while the workflow runs (its Gate waits for the signature)."""
        self.out(f"  {'':<18} CI will sign {REPOSITORY}:{tag} {seconds:.0f} s after its push")

        def sign() -> None:
            time.sleep(seconds)
            self.sign(tag, image)

        signer = threading.Thread(target=sign, name="ci-signs-later", daemon=True)
        signer.start()
        return signer

    def describe(self) -> None:
        """What runs where."""
        self.out("Local runtime (no AWS account): moto for AWS, CNCF distribution registries for ECR")
        self.out(
            f"  source       {self.config.source.account}/{self.config.source.region:<10} -> "
            f"{self.runtime.registry('source').host}"
        )
        for account, region in self.destinations:
            self.out(
                f"  destination  {account}/{region:<10} -> {self.runtime.registry_of(account, region).host}"
            )
        for rule in self.config.rules:
            self.out(
                f"  rule {rule.name!r}: repositories {rule.repositories}, tags {rule.tags.include}"
                f" excluding {rule.tags.exclude}, max {self.config.max_concurrency} copies at a time"
            )
            if rule.gates is not None:
                scan = (
                    f"scan findings at or above {rule.gates.scan.block_at} block" if rule.gates.scan else ""
                )
                signature = rule.gates.signature
                keys = len(signature.cosign_keys) if signature else 0
                waits = signature.wait_minutes if signature else 0
                self.out(
                    f"    gates: {scan} (each platform image's scan); a cosign signature by {keys} trusted key(s)"
                    f" (the demo's, made at start); a scan or signature not there yet is waited for (up to"
                    f" {waits} min)"
                )

    def step(self, number: int, title: str) -> None:
        """A numbered heading."""
        self.out(f"\n{number}. {title}")

    def send_events(
        self, pushes: list[tuple[str, Image]], expect: list[str], step: int | None = 2
    ) -> list[str]:
        """Start executions for the push events the rule matched (the source's local ECR sent one through
        EventBridge for every tag pushed, signatures included); check what matched."""
        if step:
            self.step(step, "The source's ECR sent a push event for each tag through EventBridge")
            self.out(
                f"  rule pattern (as synthesized by the CDK app): {json.dumps(event_pattern(self.config)['detail'])}"
            )
        delivered = self.runtime.deliver_events()
        matched = [event["detail"]["image-tag"] for event, _ in delivered]
        if step:
            self.step(step + 1, "Start an execution for each matched event, and only those")
        for tag, _ in pushes:
            arn = next((arn for event, arn in delivered if event["detail"]["image-tag"] == tag), None)
            self.out(
                f"  {REPOSITORY}:{tag:<14} "
                + (f"matched -> execution {arn.rsplit(':', 1)[-1]}" if arn else "no match, no execution")
            )
        if sorted(matched) != sorted(expect):
            raise DemoFailure(f"EventBridge delivered {matched or 'nothing'}, expected {expect}")
        return [arn for _, arn in delivered]

    def watch(self, arn: str) -> Execution:
        """Print the states of one execution as it runs."""
        self.out(f"  execution {arn.rsplit(':', 1)[-1]}:")
        return self.runtime.wait(arn, on_event=StatePrinter(self.out))

    def print_email(self) -> dict[str, str]:
        """The summary the SNS topic would email, as received by a queue subscribed to the topic."""
        notifications = self.runtime.notifications()
        if len(notifications) != 1:
            raise DemoFailure(f"expected one summary notification, got {len(notifications)}")
        self.out("\n   Summary email (SNS message received through a subscribed queue):")
        self.out(f"   Subject: {notifications[0]['subject']}")
        for line in notifications[0]["message"].rstrip().splitlines():
            self.out(f"   | {line}")
        return notifications[0]

    def status(self, tag: str) -> StatusReport:
        """`ecr-replicate status CONFIG app:TAG` against the local runtime, printed as the command prints it."""
        report = image_status(parse_config(json.loads(self.runtime.config_file.read_text())), REPOSITORY, tag)
        self.out(f"\n  $ ecr-replicate status {self.runtime.config_file.name} {REPOSITORY}:{tag}")
        for line in report.table().splitlines():
            self.out(f"  {line}")
        self.out(f"  (exit {0 if report.complete else 1})")
        return report


class RepairScene:
    """Steps 7-8: a destination refuses the push (PARTIAL, with the runbook link); `status`; repair; `status`."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.out = demo.out
        self.broken = demo.destinations[-1]

    def run(self, image: Image) -> None:
        """Break one destination, replicate, check the email and status, repair with `sync`, check again."""
        account, region = self.broken
        runtime = self.demo.runtime
        self.demo.step(7, f"{account}/{region} refuses pushes: the run of {REPAIR_TAG} is PARTIAL")
        runtime.refuse_pushes(account, region, True)
        self.out(f"  the {account}/{region} registry restarted read-only: it serves pulls, refuses pushes")
        self.demo.push(REPAIR_TAG, image, signed=True)
        [arn] = self.demo.send_events([(REPAIR_TAG, image)], expect=[REPAIR_TAG], step=None)
        execution = self.demo.watch(arn)
        failed = self.check_partial(execution)
        email = self.demo.print_email()
        link = section_url(failed)
        if "PARTIAL" not in email["subject"] or f"runbook: {link}" not in email["message"]:
            raise DemoFailure(f"the email is not a PARTIAL one linking {link}: {email['subject']!r}")
        self.out(f"  ok  PARTIAL email; the failed line links its runbook section {link}")
        self.expect_status(REPAIR_TAG, {"present": [self.demo.destinations[0]], "missing": [self.broken]})

        self.demo.step(
            8, f"Repair: {account}/{region} accepts pushes again; `ecr-replicate sync` fills the gap"
        )
        runtime.refuse_pushes(account, region, False)
        self.out(
            f"\n  $ ecr-replicate sync {runtime.config_file.name} --state-machine-arn {runtime.state_machine_arn}"
        )
        config = parse_config(json.loads(runtime.config_file.read_text()))
        report = sync(config, SyncOptions(state_machine_arn=runtime.state_machine_arn, poll_initial=0.5))
        for action in report.actions:
            self.out(f"  {action.status}: {action.describe()}")
        for line in report.table().splitlines():
            self.out(f"  {line}")
        repairs = [(a.kind, a.tag, a.destinations, a.status) for a in report.actions]
        if repairs != [("start", REPAIR_TAG, [f"{account}/{region}"], "done")]:
            raise DemoFailure(
                f"sync made {repairs}, expected one execution for {REPAIR_TAG} to {account}/{region}"
            )
        self.demo.print_email()
        self.expect_status(REPAIR_TAG, {"present": self.demo.destinations})
        verify_present(runtime.registry_of(account, region).host, REPOSITORY, REPAIR_TAG, image)
        self.out(
            f"  ok  {account}/{region} repaired: skopeo reads {REPOSITORY}:{REPAIR_TAG} = {image.digest}"
        )

    def check_partial(self, execution: Execution) -> str:
        """The run failed at the broken destination only, with an error the runbook has; returns the error."""
        summaries = execution.state_outputs("Summarize")
        lines = summaries[-1]["summary"]["lines"] if summaries else []
        actions = {(line["account"], line["region"]): line["action"] for line in lines}
        expected = {where: "copied" for where in self.demo.destinations} | {self.broken: "failed"}
        if execution.status != "FAILED" or actions != expected:
            raise DemoFailure(f"the run ended {execution.status} with {actions}, expected {expected}")
        [error] = [line["error"] for line in lines if line["action"] == "failed"]
        names = recordable_error_names(json.loads(STATE_MACHINE.read_text(encoding="utf-8")))
        if error not in names:
            raise DemoFailure(f"the failed destination's error {error!r} has no runbook section")
        return str(error)

    def expect_status(self, tag: str, expected: dict[str, list[tuple[str, str]]]) -> None:
        """Print `status` and check each destination's state and the exit code."""
        report = self.demo.status(tag)
        found = {(e.account, e.region): e.state for e in report.entries}
        wanted = {where: state for state, places in expected.items() for where in places}
        if found != wanted:
            raise DemoFailure(f"status says {found}, expected {wanted}")
        self.out(f"  ok  status: {', '.join(f'{a}/{r} {s}' for (a, r), s in found.items())}")


class GateScene:
    """Step 9: an unsigned image with a CRITICAL finding in one platform is blocked: at no destination, the email
    names the platform and the finding."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.out = demo.out

    def run(self, image: Image) -> None:
        """Push it, replicate, check the outcome, the destinations, the email and `status`."""
        runtime = self.demo.runtime
        self.demo.step(
            9, f"Push {BLOCKED_TAG} unsigned, with a CRITICAL finding in its arm64 image: the gates block it"
        )
        builds_before = len(runtime.codebuild.builds)
        self.demo.push(BLOCKED_TAG, image, signed=False, findings={"linux/arm64": [CRITICAL]})
        [arn] = self.demo.send_events([(BLOCKED_TAG, image)], expect=[BLOCKED_TAG], step=None)
        execution = self.demo.watch(arn)
        summaries = execution.state_outputs("Summarize")
        summary = summaries[-1]["summary"] if summaries else {}
        actions = {(line["account"], line["region"]): line["action"] for line in summary.get("lines", [])}
        expected = dict.fromkeys(self.demo.destinations, "blocked")
        if execution.status != "SUCCEEDED" or summary.get("outcome") != "BLOCKED" or actions != expected:
            raise DemoFailure(
                f"the run of {BLOCKED_TAG} ended {execution.status} ({summary.get('outcome')}) with {actions}, "
                f"expected BLOCKED at {expected}"
            )
        if len(runtime.codebuild.builds) != builds_before or "Precheck" in execution.states_entered():
            raise DemoFailure(f"a destination was touched for the blocked {BLOCKED_TAG}")
        email = self.demo.print_email()
        wanted = (
            "linux/arm64: 1 CRITICAL finding: CVE-2026-1234 (openssl 3.0.2)",
            f"runbook: {section_url('ImageBlocked')}",
        )
        missing = [text for text in wanted if text not in email["message"]]
        if "linux/amd64:" in email["message"]:
            missing.append("only the platform that blocked (it names linux/amd64 too)")
        if not email["subject"].startswith(f"ECR replication BLOCKED: {REPOSITORY}:{BLOCKED_TAG}") or missing:
            raise DemoFailure(f"the BLOCKED email lacks {missing or 'its subject'}: {email['subject']!r}")
        self.out("  ok  BLOCKED email: the platform that blocked, its finding and the runbook link")
        for account, region in self.demo.destinations:
            verify_absent(runtime.registry_of(account, region).host, REPOSITORY, BLOCKED_TAG)
            self.out(f"  ok  {account}/{region}: {REPOSITORY}:{BLOCKED_TAG} is not there (skopeo)")
        report = self.demo.status(BLOCKED_TAG)
        found = {(e.account, e.region): e.state for e in report.entries}
        if found != expected:
            raise DemoFailure(f"status says {found}, expected every destination blocked")
        self.out("  ok  status: blocked by a gate at every destination, with the reason")


def demo_config(cosign_key: str) -> dict[str, Any]:
    """demo-config.yaml, its gated rules trusting `cosign_key` (the public half of the key made at start) and
    waiting up to 5 minutes for the signature."""
    config: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    for rule in config["rules"]:
        if "gates" in rule:
            rule["gates"]["signature"] = {"cosign_keys": [cosign_key], "wait_minutes": 5}
    return config


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_demo(out: Printer = print) -> int:
    """Run the demo; 0 when everything held, 1 with a one-line reason otherwise.

    Ctrl-C and SIGTERM unwind the runtime, so its registries and moto are stopped and its files removed.
    """
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        key = new_key()
        with LocalRuntime(demo_config(public_pem(key))) as runtime:
            out(f"Started 3 registries, moto and the state machine in {time.monotonic() - started:.1f}s\n")
            Demo(runtime, out, key).run()
    except (DemoFailure, RuntimeSetupError) as failure:
        out(f"\nDEMO FAILED: {failure}")
        return 1
    except Exception as error:
        traceback.print_exc()
        out(f"\nDEMO FAILED: unexpected {type(error).__name__}: {error}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    out(
        f"\nDEMO PASSED in {time.monotonic() - started:.1f}s: {RELEASE_TAG}, signed {SIGN_AFTER_SECONDS:.0f} s after "
        "its push, passed the gates once its signature and scans arrived and is at every destination with the same "
        f"digest and platforms, {DEV_TAG} nowhere, the re-push copied nothing; a refused push made {REPAIR_TAG} "
        f"PARTIAL with its runbook link, and sync repaired it (status before and after); the unsigned "
        f"{BLOCKED_TAG} with a CRITICAL finding in its arm64 image was blocked, is at no destination, and the email "
        "names the platform."
    )
    return 0
