"""Credential-shaped values kept out of every message that leaves the process.

An error's text can carry what signed the request that failed: botocore's HTTPClientError quotes the whole
`Authorization` header when a key id holds a line break (`Credential=<key id>/<date>/...,
Signature=<hex>`), a presigned URL carries `X-Amz-Credential` and `X-Amz-Security-Token`. `redact` is the
one function applied wherever an error text leaves: the Lambda handlers' errors (the execution history, X-Ray
and the logs), records and summaries (the email, the events, the Fail cause), `status` and `sync` reports,
and the CLI's messages and result file. It replaces the values, keeps the names, and is idempotent.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"
# Values end at a separator of a header or a query string, a quote, or white space; a key id's escaped line
# break (`\n` as botocore prints the header's bytes) is part of the value.
_VALUE = r"[^,&;\s'\"]+"
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # SigV4: the Authorization header's Credential and Signature; a presigned URL's query parameters.
    (re.compile(rf"(?i)\b((?:X-Amz-)?(?:Credential|Signature|Security-Token)=){_VALUE}"), rf"\1{REDACTED}"),
    # Access key ids anywhere: long-term (AKIA) and temporary (ASIA) ones (AWS STS API reference,
    # GetAccessKeyInfo: "Access key IDs beginning with AKIA are long-term credentials ... ASIA are temporary").
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{12,124}(?![A-Z0-9])"), REDACTED),
    # A secret key or a session token named as a field, in JSON or as key=value.
    (
        re.compile(
            r"(?i)(\"?\b(?:SecretAccessKey|SessionToken|aws_secret_access_key|aws_session_token)\"?\s*[:=]\s*\"?)"
            + _VALUE
        ),
        rf"\1{REDACTED}",
    ),
    # An Authorization header's token or basic credentials.
    (re.compile(r"\b(Bearer|Basic) [A-Za-z0-9._~+/-]{12,}=*"), rf"\1 {REDACTED}"),
)


def redact(text: str) -> str:
    """`text` with every credential-shaped value replaced by `<redacted>`."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def described(error: BaseException) -> str:
    """`ErrorName: message`, redacted: how an error is named in a report."""
    return redact(f"{type(error).__name__}: {error}")
