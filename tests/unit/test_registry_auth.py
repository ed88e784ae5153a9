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
    Authenticator,
    Credentials,
    EcrTokenProvider,
    credentials_from_env,
    ecr_host_parts,
    parse_challenge,
)


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
