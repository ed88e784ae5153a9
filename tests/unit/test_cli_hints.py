"""Hints where the cause of a failure is known: plain HTTP answering TLS, unquoted account ids, and a
registry-auth variable that does not hold credentials."""

from __future__ import annotations

import ssl
import time

import pytest

from workflow.core.exceptions import InvalidConfig, RegistryAuthError, RegistryProtocolError
from workflow.models.config import parse_config
from workflow.registry.auth import AUTH_ENV, credentials_from_env
from workflow.registry.retry import RetryPolicy, TransientError, transport_fault

HTTP_RESPONSE = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


def plain_http_answer_to_tls() -> ssl.SSLError:
    """The error a TLS client raises when the server answers its hello in plain HTTP (no network)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="registry.example.com")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()  # sends the ClientHello
    incoming.write(HTTP_RESPONSE)
    with pytest.raises(ssl.SSLError) as caught:
        client.do_handshake()
    return caught.value


def test_a_plain_http_answer_to_tls_is_final_and_names_the_flag() -> None:
    # Given the SSLError of a TLS handshake that read an HTTP response, wrapped as urllib3 wraps it
    error = plain_http_answer_to_tls()
    assert error.reason == "WRONG_VERSION_NUMBER"
    wrapped = OSError("SSLError", error)
    # When classified
    fault = transport_fault(wrapped, "reading manifest from registry.example.com:5000")
    # Then it is final (not retried), names the registry and the flag
    assert isinstance(fault, RegistryProtocolError)
    assert "registry.example.com:5000" in str(fault)
    assert "--insecure-registry HOST:PORT" in str(fault)


def test_a_plain_http_answer_is_not_retried() -> None:
    # Given an operation failing with the classified fault
    calls: list[float] = []

    def operation() -> None:
        calls.append(time.monotonic())
        fault = transport_fault(plain_http_answer_to_tls(), "GET /v2/")
        raise fault

    # When run under the retry policy Then it fails on the first attempt
    with pytest.raises(RegistryProtocolError):
        RetryPolicy().run(operation, "GET /v2/", sleep=lambda _s: None)
    assert len(calls) == 1


def test_a_reset_is_still_transient() -> None:
    assert isinstance(transport_fault(ConnectionResetError(104, "reset"), "GET /v2/"), TransientError)


def test_an_unquoted_account_id_hints_to_quote_it() -> None:
    # Given an account id YAML read as a number
    config = {
        "source": {"account": 111111111111, "region": "us-east-1"},
        "rules": [
            {
                "name": "r",
                "tags": {"include": ["v1"]},
                "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
            }
        ],
    }
    # When validated Then the problem says to quote it
    with pytest.raises(InvalidConfig) as caught:
        parse_config(config)
    assert caught.value.problems == [
        'source.account: Input should be a valid string (YAML read a number here: quote it, e.g. "012345678901"; '
        "unquoted, leading zeros are lost)"
    ]


@pytest.mark.parametrize(
    "entry",
    [
        '{"auth": ""}',
        '{"auth": "dXNlcg=="}',  # base64 "user": no colon, no password
        '{"auth": "dXNlcjo="}',  # "user:": empty password
        '{"auth": "!!!not base64!!!"}',
        '{"auth": 5}',
        '{"username": "", "password": ""}',
        '{"username": "u", "password": ""}',
    ],
)
def test_a_malformed_registry_auth_entry_is_an_error_not_empty_credentials(entry: str) -> None:
    # Given an entry for the host that holds no usable credentials
    environ = {AUTH_ENV: '{"h": ' + entry + "}"}
    # When looked up Then RegistryAuthError names the variable and the host
    with pytest.raises(RegistryAuthError, match=f"{AUTH_ENV}: .* for h "):
        credentials_from_env("h", environ)
