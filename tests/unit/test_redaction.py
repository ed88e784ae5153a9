"""Credential-shaped values never leave in a message: a key pair's shape is checked when its secret is read,
and every boundary where an error text leaves the process redacts it (workflow.core.redaction)."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from lambdas import precheck as precheck_handler
from tests.unit.conftest import FakeLambdaContext, replication_config
from tests.unit.test_records import TARGET
from workflow.core.commandline import failure_of
from workflow.core.exceptions import RegistryAuthError
from workflow.core.redaction import redact
from workflow.engine.roles import assume_role_in_partition
from workflow.models.config import parse_config
from workflow.ops import status as status_module
from workflow.ops.inventory import SourceImage
from workflow.ops.status import image_status
from workflow.pipeline.announce import batches
from workflow.pipeline.record import record
from workflow.pipeline.summary import summarize

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SIGNATURE = "61f93af22f16a9cebc3108d55c62193acf8b1142db30cac1889cb7603f1dd138"
# What botocore raised for a key id ending in a line break (seen: the whole signed Authorization header).
LEAK = (
    "cannot assume arn:aws-cn:iam::222222222222:role/ecr-replication-target: HTTPClientError: An HTTP Client "
    "raised an unhandled exception: Invalid header value b'AWS4-HMAC-SHA256 "
    f"Credential={KEY_ID}\\n/20261206/cn-north-1/sts/aws4_request, "
    f"SignedHeaders=content-type;host;x-amz-date, Signature={SIGNATURE}'"
)
DIGEST = "sha256:" + "d" * 64


class Secrets:
    """Secrets Manager's GetSecretValue for one secret."""

    def __init__(self, value: dict[str, str]) -> None:
        self.value = value

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        return {"SecretString": json.dumps(self.value)}


def assert_clean(text: str) -> None:
    """Neither the key id nor the signature, in any form."""
    assert KEY_ID not in text
    assert SIGNATURE not in text


@pytest.fixture
def sts_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """STS at a closed loopback port: nothing leaves the machine whatever the request."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.mark.parametrize("stray", ["\n", "\r", " "], ids=["newline", "carriage-return", "space"])
def test_a_key_id_with_a_stray_character_is_refused_when_read_and_never_echoed(
    sts_on_loopback: None, stray: str
) -> None:
    # Given a credentials secret whose access key id ends in a line break (or a space), pasted with it
    secrets = Secrets({"AccessKeyId": KEY_ID + stray, "SecretAccessKey": SECRET})
    # When the destination role in another partition is assumed with it
    with pytest.raises(RegistryAuthError) as error:
        assume_role_in_partition(
            "arn:aws-cn:iam::222222222222:role/ecr-replication-target",
            "ecr-replicate",
            secret_id="cn-writer",
            secret_region="us-east-1",
            region="cn-north-1",
            secrets_client=secrets,
        )
    # Then the secret is refused by name, saying which field is malformed, and no part of the key is echoed
    message = str(error.value)
    assert message.startswith("the credentials secret cn-writer: AccessKeyId is not 16 to 128 letters")
    assert_clean(message)
    assert error.value.__cause__ is None


def test_a_secret_key_with_a_stray_line_break_is_refused_by_name(sts_on_loopback: None) -> None:
    secrets = Secrets({"AccessKeyId": KEY_ID, "SecretAccessKey": SECRET + "\n"})
    with pytest.raises(RegistryAuthError, match="SecretAccessKey is not 1 to 128 printable") as error:
        assume_role_in_partition(
            "arn:aws-cn:iam::222222222222:role/x",
            "ecr-replicate",
            secret_id="cn-writer",
            secret_region="us-east-1",
            region="cn-north-1",
            secrets_client=secrets,
        )
    assert SECRET not in str(error.value)


def _record() -> str:
    error = {"Error": "RegistryAuthError", "Cause": json.dumps({"errorType": "X", "errorMessage": LEAK})}
    return record({"target": TARGET, "precheck": {}, "error": error}).model_dump_json()


def _summary() -> str:
    failed = record({"target": TARGET, "error": {"Error": "RegistryAuthError", "Cause": LEAK}})
    summary = summarize(
        [failed],
        repository="app",
        tag="release-1",
        execution_arn="arn:aws:states:us-east-1:111111111111:execution:m:e",
    )
    return summary.model_dump_json() + json.dumps(batches(summary))


def _status(monkeypatch: pytest.MonkeyPatch) -> str:
    class Leaky:
        """A source holding app:release-1; every destination refuses with the leaking text."""

        def __init__(self, config: Any, clients: Any, **_: Any) -> None:
            self.clients = clients

        def source(self, source: Any = None) -> Any:
            return SimpleNamespace(
                images=lambda repository, accept: iter([SourceImage("app", "release-1", DIGEST)])
            )

        def destination(self, target: Any) -> Any:
            def refuse(repository: str, tag: str) -> None:
                raise RegistryAuthError(LEAK)

            return SimpleNamespace(lookup=refuse)

    monkeypatch.setattr(status_module, "Inventories", Leaky)
    report = image_status(parse_config(replication_config()), "app", "release-1", clients=SimpleNamespace())  # type: ignore[arg-type]
    assert report.entries
    assert all(entry.error for entry in report.entries)
    return json.dumps(report.to_dict()) + report.table()


def _cli() -> str:
    failure = failure_of(RegistryAuthError(LEAK))
    return failure.line() + failure.json()


def _handler(monkeypatch: pytest.MonkeyPatch) -> str:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RegistryAuthError(LEAK)

    monkeypatch.setattr(precheck_handler, "check_target", refuse)
    with pytest.raises(RegistryAuthError) as error:  # the same class: the Step Functions error name
        precheck_handler.handler({"execution": "e", "target": TARGET}, FakeLambdaContext())  # type: ignore[arg-type]
    assert error.value.__cause__ is None
    return str(error.value)


BOUNDARIES: dict[str, Callable[[pytest.MonkeyPatch], str]] = {
    "record (history, summary, email, events)": lambda _: _record(),
    "summary, email, Fail cause and events": lambda _: _summary(),
    "status": _status,
    "CLI message and result file": lambda _: _cli(),
    "Lambda error (history, X-Ray, logs)": _handler,
}


@pytest.fixture(params=list(BOUNDARIES))
def boundary(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """What leaves through one boundary when it meets the leaking error."""
    return BOUNDARIES[request.param](monkeypatch)


def test_every_boundary_redacts_a_credential_bearing_error(boundary: str) -> None:
    # Given an error whose text quotes a signed Authorization header (key id and signature)
    # When it leaves through a boundary / Then neither is in what leaves, and the rest is still readable
    assert_clean(boundary)
    assert "Credential=<redacted>" in boundary
    assert "cannot assume" in boundary


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"X-Amz-Credential={KEY_ID}%2F2026&X-Amz-Security-Token=IQoJb3J&X-Amz-Signature=ab12",
            "X-Amz-Credential=<redacted>&X-Amz-Security-Token=<redacted>&X-Amz-Signature=<redacted>",
        ),
        (
            f'{{"AccessKeyId": "{KEY_ID}", "SecretAccessKey": "{SECRET}"}}',
            '{"AccessKeyId": "<redacted>", "SecretAccessKey": "<redacted>"}',
        ),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "Authorization: Bearer <redacted>"),
        (
            f"manifest {DIGEST} at registry:5000/app:release-1",
            f"manifest {DIGEST} at registry:5000/app:release-1",
        ),
    ],
)
def test_redact_keeps_names_and_replaces_values(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected
