"""Auth helpers: challenges, credentials from the environment, the ECR token cache."""

from __future__ import annotations

import base64
import json
import re

import boto3
import pytest
import urllib3
from moto import mock_aws

from workflow.core.exceptions import RegistryAuthError
from workflow.registry.auth import (
    AUTH_ENV,
    ECR_ENDPOINTS_ENV,
    Authenticator,
    Credentials,
    EcrTokenProvider,
    credentials_from_env,
    ecr_endpoint_parts,
    ecr_host_parts,
    ecr_registry_of,
    parse_challenge,
)
from workflow.registry.factory import make_client


def test_bearer_challenge_with_comma_in_scope_is_parsed() -> None:
    # Given a bearer challenge whose scope holds a comma, When parsed, Then every parameter is intact
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example.com/token",
        "service": "registry",
        "scope": "repository:a/b:pull,push",
    }


def test_credentials_come_from_the_environment() -> None:
    # Given the env var with a username/password entry and a docker-style auth entry
    env = {
        AUTH_ENV: json.dumps(
            {
                "a.example.com:5000": {"username": "u", "password": "p"},
                "b.example.com": {"auth": base64.b64encode(b"v:q:r").decode()},
            }
        )
    }
    # When looked up, Then both parse, an unknown host has none, and the password never shows in repr
    assert credentials_from_env("a.example.com:5000", env) == Credentials("u", "p")
    assert credentials_from_env("b.example.com", env) == Credentials("v", "q:r")
    assert credentials_from_env("c.example.com", env) is None
    assert "p'" not in repr(Credentials("u", "p"))


@pytest.mark.parametrize("value", ["not json", "[]", '{"h": "x"}', '{"h": {"username": "u"}}'])
def test_malformed_auth_env_raises(value: str) -> None:
    # Given a malformed env var, When looked up, Then RegistryAuthError explains it
    with pytest.raises(RegistryAuthError, match=AUTH_ENV):
        credentials_from_env("h", {AUTH_ENV: value})


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("111111111111.dkr.ecr.eu-west-1.amazonaws.com", ("111111111111", "eu-west-1")),
        ("111111111111.dkr.ecr-fips.us-east-1.amazonaws.com", ("111111111111", "us-east-1")),
        ("111111111111.dkr.ecr.cn-north-1.amazonaws.com.cn", ("111111111111", "cn-north-1")),
        ("111111111111.dkr.ecr.eusc-de-east-1.amazonaws.eu", ("111111111111", "eusc-de-east-1")),
        ("111111111111.dkr.ecr.eusc-de-east-1.amazonaws.eu.evil.com", None),
        ("111111111111.dkr.ecr.eu-west-1.amazonaws.com.evil.com", None),
        ("127.0.0.1:5000", None),
    ],
)
def test_ecr_hosts_are_recognised(host: str, expected: tuple[str, str] | None) -> None:
    # Given a host, When checked, Then only ECR registry hosts yield (account, region)
    assert ecr_host_parts(host) == expected


@mock_aws
def test_ecr_token_is_cached_until_shortly_before_expiry() -> None:
    # Given a token provider on a session and a controllable clock
    now = [1_000.0]
    provider = EcrTokenProvider(boto3.Session(region_name="eu-west-1"), "eu-west-1", clock=lambda: now[0])
    # When credentials are asked for twice, Then GetAuthorizationToken is called once, user AWS
    first = provider.credentials()
    assert provider.credentials() == first
    assert (provider.calls, first.username) == (1, "AWS")
    # When the clock passes the expiry minus the margin, Then a new token is fetched
    now[0] = 10**11
    provider.credentials()
    assert provider.calls == 2


HTTP_REALM = 'Bearer realm="http://auth.example.com/token",service="reg"'


def _authenticator(insecure: bool) -> Authenticator:
    authenticator = Authenticator("reg.example.com", urllib3.PoolManager(), insecure=insecure)
    authenticator._fetch_token = lambda scope: "token"  # type: ignore[method-assign]
    return authenticator


def test_a_plain_http_token_realm_is_refused_for_an_https_registry() -> None:
    # Given an HTTPS registry that names a plain-HTTP token realm
    authenticator = _authenticator(insecure=False)
    # When it challenges, Then no token is asked for over plain HTTP
    with pytest.raises(
        RegistryAuthError, match=re.escape("realm 'http://auth.example.com/token' is not HTTPS")
    ):
        authenticator.challenge(HTTP_REALM, "repository:app:pull")


def test_a_plain_http_token_realm_is_used_for_an_insecure_registry() -> None:
    # Given a plain-HTTP (loopback test) registry, When it names a plain-HTTP realm, Then the token is fetched
    assert _authenticator(insecure=True).challenge(HTTP_REALM, "repository:app:pull")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{", "is not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"127.0.0.1:5000": "111111111111"}', "is not ACCOUNT/REGION"),
        ('{"127.0.0.1:5000": "111111111111/mars-1"}', "is not ACCOUNT/REGION"),
    ],
)
def test_a_malformed_ecr_endpoints_variable_is_refused_naming_it(value: str, problem: str) -> None:
    # Given ECR_REPLICATE_ECR_ENDPOINTS that is not a host -> ACCOUNT/REGION object / Then reading it says so
    with pytest.raises(RegistryAuthError, match=re.escape(problem)) as raised:
        ecr_endpoint_parts("127.0.0.1:5000", {ECR_ENDPOINTS_ENV: value})
    assert ECR_ENDPOINTS_ENV in str(raised.value)


def test_an_endpoint_standing_for_ecr_is_read_with_a_token_of_the_principal_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a loopback registry standing for 222222222222/eu-west-1's ECR registry, and a session of that account
    monkeypatch.setenv(ECR_ENDPOINTS_ENV, json.dumps({"127.0.0.1:5000": "222222222222/eu-west-1"}))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "222222222222")
    assert ecr_registry_of("127.0.0.1:5000") == ("222222222222", "eu-west-1")
    assert ecr_registry_of("127.0.0.1:5001") is None
    with mock_aws():
        session = boto3.Session(region_name="eu-west-1")
        # When a client for it is made, and one that reads it in place of the ECR API
        client = make_client("127.0.0.1:5000", session=session, insecure_registries=["127.0.0.1:5000"])
        plain = make_client("127.0.0.1:5000", insecure_registries=["127.0.0.1:5000"], ecr_token=False)
        # Then the first sends the registry token GetAuthorizationToken gave that session (as ECR wants), the
        # second no credentials
        header = client.auth.header("repository:app:pull")
        assert header is not None
        assert base64.b64decode(header.removeprefix("Basic ")).decode() == "AWS:222222222222-auth-token"
        assert plain.auth.header("repository:app:pull") is None
        assert client.base == "http://127.0.0.1:5000"
