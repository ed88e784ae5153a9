"""A destination in aws-cn, end to end in the local runtime: the precheck and the copy job each read the key
pair from Secrets Manager and assume the destination role with STS in cn-north-1, and the secret's value
appears in no state input or output, no log line and no summary."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Iterator

import pytest

from lambdas.observability import logger as handler_logger
from tests.e2e.conftest import E2E, SOURCE, SharedRuntime, skopeo_digest
from tests.iam import recorder
from workflow.local.runtime import LocalRuntime

CHINA = {"account": "777777777777", "region": "cn-north-1"}
pytestmark = [pytest.mark.e2e, pytest.mark.own_runtime]
SECRET_NAME = "ecr-replication/cn"
ROLE = "arn:aws-cn:iam::777777777777:role/ecr-replication-target"


@pytest.fixture(scope="module")
def china(shared_runtime: SharedRuntime) -> Iterator[E2E]:
    """A runtime whose one destination is in aws-cn (a local registry stands for cn-north-1); email always (the
    shared one stopped)."""
    shared_runtime.stop()
    config = {
        "source": SOURCE,
        "rules": [
            {
                "name": "china",
                "repositories": ["app"],
                "tags": {"include": ["release-*"]},
                "destinations": [
                    {
                        "account": CHINA["account"],
                        "regions": [CHINA["region"]],
                        "credentials": {
                            "secret": SECRET_NAME,
                            "principal": "arn:aws-cn:iam::777777777777:user/ecr-replication",
                        },
                    }
                ],
            }
        ],
        "notifications": {"emails": ["platform-team@example.com"], "on": "always"},
    }
    with LocalRuntime(config) as runtime:
        yield E2E(runtime)


@pytest.fixture
def handler_log() -> Iterator[io.StringIO]:
    """Every line the handlers' logger writes during the test, formatted as Lambda writes it (its own
    handler keeps the stdout it found when first used, which may be an earlier test's capture)."""
    stream = io.StringIO()
    tap = logging.StreamHandler(stream)
    tap.setFormatter(handler_logger.registered_formatter)
    target = logging.getLogger(handler_logger.name)
    target.addHandler(tap)
    yield stream
    target.removeHandler(tap)


def test_no_secret_value_reaches_a_state_a_log_or_the_summary(
    china: E2E, handler_log: io.StringIO, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Given the credentials secret holding a key pair with distinctive values
    When a release-* push replicates to the aws-cn destination
    Then the image arrives with its digest, the precheck and the copy job each read the secret and signed
    AssumeRole in cn-north-1 with its key pair, and neither value (nor the secret string) appears in any
    state input or output of the execution history, the Lambda log, the log records, the copy build's log,
    environment or exports, the execution output, or the summary email."""
    access_key = "AKIA" + uuid.uuid4().hex[:16].upper()
    secret_key = f"LEAK-CANARY-{uuid.uuid4().hex}"
    secret_string = json.dumps({"AccessKeyId": access_key, "SecretAccessKey": secret_key})
    china.runtime.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=secret_string)
    tag = china.new_tag()
    image = china.push(tag)

    (execution,) = china.run_event(tag, image)

    assert execution.status == "SUCCEEDED", execution.cause
    host = china.runtime.registry_of(CHINA["account"], CHINA["region"]).host
    assert skopeo_digest(host, "app", tag) == image.digest
    # The key pair was used where it is meant to be: AssumeRole of the cn role, in cn-north-1, by both readers
    records = recorder.read(os.environ[recorder.RECORD_ENV])
    signed = {
        (r["component"], r["operation"], r["region"], r["params"].get("RoleArn"))
        for r in records
        if r["kind"] == "call" and r["access_key"] == access_key
    }
    assert signed == {
        ("Precheck", "AssumeRole", "cn-north-1", ROLE),
        ("Copy", "AssumeRole", "cn-north-1", ROLE),
    }
    # Everything the product wrote or handed on during the run
    (build,) = [b for b in china.runtime.codebuild.builds if host in b.environment["DESTINATION_IMAGE"]]
    assert build.environment["DST_CREDENTIALS_SECRET"] == SECRET_NAME
    # The handlers' log lines, and what they print (EMF metrics) to the Lambda log file or pytest's capture
    captured = capsys.readouterr()
    lambda_log = handler_log.getvalue() + china.runtime.lambda_log.read_text(encoding="utf-8") + captured.out
    assert '"message":"prechecked"' in handler_log.getvalue()
    notifications = china.runtime.notifications()
    assert notifications
    surfaces = {
        "execution history": json.dumps(execution.events, default=str),
        "execution output": json.dumps(execution.output),
        "Lambda log": lambda_log,
        "Python log records": caplog.text,
        "copy build log": build.log,
        "copy build environment and exports": json.dumps([build.environment, build.exported]),
        "summary email": json.dumps(notifications),
    }
    assert "copied" in surfaces["copy build log"] + surfaces["execution output"]
    for value in (secret_key, access_key, secret_string):
        leaked = [where for where, text in surfaces.items() if value in text]
        assert not leaked, f"a secret value appears in: {', '.join(leaked)}"
