"""Registry authentication: anonymous, basic, bearer token (WWW-Authenticate challenge) and ECR.

Basic credentials for registries other than ECR come from the environment variable
`ECR_REPLICATE_REGISTRY_AUTH`, a JSON object keyed by `host[:port]`:
`{"registry.example.com:5000": {"username": "u", "password": "p"}}` (an `"auth"` key holding
base64 `user:password`, as in a docker config, is accepted too). They are sent as Basic auth when the
registry challenges with Basic, and to the token endpoint when it challenges with Bearer, only when that
realm is on the registry's own host (any port) or is its known token service (Docker Hub's); a realm
must be HTTPS unless the registry itself is spoken to over plain HTTP (`--insecure-registry`).

ECR hosts (`<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`, `.amazonaws.eu` in aws-eusc) use a token from
`GetAuthorizationToken`, called through the boto3 session given (holding assumed-role credentials that
renew themselves), cached until five minutes before it expires (12 h) or until ECR refuses it.

A registry endpoint standing for an account/Region's ECR registry (the local runtime's loopback registries)
is named in `ECR_REPLICATE_ECR_ENDPOINTS`, a JSON object `{"127.0.0.1:5000": "111111111111/us-east-1"}`: a
client for it gets its registry token from GetAuthorizationToken in that Region through the session it is
given, as for ECR itself, so each request is made as the principal that got the token ("An authorization
token's permission scope matches that of the IAM principal used to retrieve the authentication token",
Amazon ECR user guide, "Private registry authentication":
https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html).
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

from workflow.core.documents import load_json
from workflow.core.exceptions import RegistryAuthError
from workflow.core.grammar import account_problem, region_problem, shown
from workflow.registry.retry import TransientError, transport_fault

AUTH_ENV = "ECR_REPLICATE_REGISTRY_AUTH"
ECR_ENDPOINTS_ENV = "ECR_REPLICATE_ECR_ENDPOINTS"
ECR_HOST_RE = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.(?:com|com\.cn|eu)$"
)
TOKEN_REFRESH_MARGIN = 300.0
MAX_TOKEN_BODY = 64 << 10
# Registries whose token service is on a host of its own (Docker Hub's); any other realm must be on the
# registry's host (an ECR registry answers with a Basic challenge on its own host).
KNOWN_TOKEN_HOSTS = {"registry-1.docker.io": ("auth.docker.io",), "docker.io": ("auth.docker.io",)}
DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class Credentials:
    """A username and password; the password never appears in repr."""

    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        """The value of an `Authorization: Basic` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def ecr_host_parts(host: str) -> tuple[str, str] | None:
    """(account, region) when `host` is an ECR registry host, else None."""
    match = ECR_HOST_RE.match(host.lower())
    return (match["account"], match["region"]) if match else None


def ecr_endpoint_parts(host: str, environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(account, region) of the ECR registry the endpoint `host` stands for, from ECR_REPLICATE_ECR_ENDPOINTS."""
    text = (environ if environ is not None else os.environ).get(ECR_ENDPOINTS_ENV)
    if not text:
        return None
    try:
        entries = load_json(text)
    except ValueError as exc:
        raise RegistryAuthError(f"{ECR_ENDPOINTS_ENV} is not valid JSON") from exc
    if not isinstance(entries, dict):
        raise RegistryAuthError(f"{ECR_ENDPOINTS_ENV} must be a JSON object keyed by registry host")
    entry = entries.get(host)
    if entry is None:
        return None
    account, _, region = entry.partition("/") if isinstance(entry, str) else ("", "", "")
    problem = account_problem(account) or region_problem(region)
    if problem:
        raise RegistryAuthError(
            f"{ECR_ENDPOINTS_ENV}: the entry for {shown(host)} is not ACCOUNT/REGION ({problem})"
        )
    return account, region


def ecr_registry_of(host: str) -> tuple[str, str] | None:
    """(account, region) when `host` is an ECR registry or an endpoint standing for one, else None."""
    return ecr_host_parts(host) or ecr_endpoint_parts(host)


def credentials_from_env(host: str, environ: dict[str, str] | None = None) -> Credentials | None:
    """Basic credentials for `host` from ECR_REPLICATE_REGISTRY_AUTH, or None."""
    text = (environ if environ is not None else os.environ).get(AUTH_ENV)
    if not text:
        return None
    try:
        entries = load_json(text, max_bytes=MAX_TOKEN_BODY)
    except ValueError as exc:
        raise RegistryAuthError(f"{AUTH_ENV} {exc}") from None
    if not isinstance(entries, dict):
        raise RegistryAuthError(f"{AUTH_ENV} must be a JSON object keyed by registry host")
    entry = entries.get(host)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise RegistryAuthError(f"{AUTH_ENV}: the entry for {host} must be an object")
    if "auth" in entry:
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (TypeError, ValueError, UnicodeDecodeError):
            decoded = ""
        username, colon, password = decoded.partition(":")
        if not (username and colon and password):
            raise RegistryAuthError(f"{AUTH_ENV}: the 'auth' entry for {host} is not base64 user:password")
        return Credentials(username, password)
    if not all(isinstance(entry.get(key), str) and entry[key] for key in ("username", "password")):
        raise RegistryAuthError(
            f"{AUTH_ENV}: the entry for {host} needs non-empty 'username' and 'password' strings"
        )
    return Credentials(entry["username"], entry["password"])


class EcrTokenProvider:
    """ECR registry credentials from GetAuthorizationToken, cached until shortly before expiry."""

    def __init__(self, session: Any, region: str, clock: Any = time.time) -> None:
        self._client = session.client("ecr", region_name=region)
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[Credentials, float] | None = None
        self.calls = 0

    def credentials(self) -> Credentials:
        """Current credentials, fetching a new token when the cached one is about to expire."""
        with self._lock:
            if self._cached and self._cached[1] - TOKEN_REFRESH_MARGIN > self._clock():
                return self._cached[0]
            try:
                response = self._client.get_authorization_token()
            except Exception as exc:
                raise RegistryAuthError(f"ECR GetAuthorizationToken failed: {type(exc).__name__}") from exc
            self.calls += 1
            data = response["authorizationData"][0]
            username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
            expires = data.get("expiresAt")
            expiry = expires.timestamp() if isinstance(expires, datetime) else self._clock() + 12 * 3600
            self._cached = (Credentials(username, password), expiry)
            return self._cached[0]

    def invalidate(self) -> bool:
        """Drop the cached token (the registry refused it); True when there was one to drop."""
        with self._lock:
            dropped, self._cached = self._cached is not None, None
            return dropped


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split a WWW-Authenticate header into its scheme (lower case) and parameters."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'([A-Za-z_]+)="([^"]*)"', rest)}
    for key, value in re.findall(r'([A-Za-z_]+)=([^",\s]+)', rest):
        params.setdefault(key.lower(), value)
    return scheme.lower(), params


class Authenticator:
    """Produces the Authorization header for one registry host; thread-safe."""

    def __init__(
        self,
        registry: str,
        pool: urllib3.PoolManager,
        *,
        credentials: Credentials | None = None,
        ecr: EcrTokenProvider | None = None,
        insecure: bool = False,
        clock: Any = time.time,
    ) -> None:
        self.registry = registry
        self.insecure = insecure
        self._pool = pool
        self._basic = credentials
        self._ecr = ecr
        self._clock = clock
        self._lock = threading.Lock()
        self._scheme: str | None = "basic" if ecr else None
        self._bearer: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, float]] = {}

    def header(self, scope: str) -> str | None:
        """The Authorization header for a request needing `scope`, or None (anonymous so far)."""
        if self._scheme == "basic":
            creds = self._ecr.credentials() if self._ecr else self._basic
            return creds.basic_header() if creds else None
        if self._scheme == "bearer":
            with self._lock:
                cached = self._tokens.get(scope)
            if cached and cached[1] > self._clock():
                return f"Bearer {cached[0]}"
            return f"Bearer {self._fetch_token(scope)}"
        return None

    def challenge(self, www_authenticate: str | None, scope: str) -> bool:
        """Learn from a 401 challenge; True when a retry with new credentials can help."""
        scheme, params = parse_challenge(www_authenticate or "")
        if scheme == "basic":
            if self._ecr is not None:
                # ECR refused a token before its expiresAt (the role session it came from ended, the
                # role changed): the next request gets a new one through the renewed role credentials.
                return self._ecr.invalidate()
            if self._scheme == "basic" or not self._basic:
                return False
            self._scheme = "basic"
            return True
        if scheme == "bearer" and params.get("realm"):
            self._check_realm(params["realm"])
            with self._lock:
                had_token = scope in self._tokens
                self._tokens.pop(scope, None)
                self._bearer = params
                self._scheme = "bearer"
            if had_token and params.get("error") != "invalid_token":
                return False
            self._fetch_token(scope)
            return True
        return False

    def _check_realm(self, realm: str) -> None:
        """Refuse a token realm over plain HTTP (unless this registry is insecure) and, when there are
        credentials to send it, one on another host than the registry's or its known token service."""
        parts = urlsplit(realm)
        if parts.scheme.lower() != "https" and not (self.insecure and parts.scheme.lower() == "http"):
            raise RegistryAuthError(
                f"{self.registry}: token realm {shown(realm)} is not HTTPS; refusing to ask it for a token"
            )
        own = self.registry.rsplit(":", 1)[0] if not self.registry.endswith("]") else self.registry
        host = (parts.hostname or "").lower()
        allowed = {own.strip("[]").lower(), *KNOWN_TOKEN_HOSTS.get(own.lower(), ())}
        if self._basic is not None and host not in allowed:
            raise RegistryAuthError(
                f"{self.registry}: token realm {shown(realm)} is on another host; "
                "refusing to send it this registry's credentials"
            )

    def _fetch_token(self, scope: str) -> str:
        realm = self._bearer["realm"]
        query = {"scope": scope}
        if self._bearer.get("service"):
            query["service"] = self._bearer["service"]
        headers = {}
        if self._basic:
            headers["Authorization"] = self._basic.basic_header()
        try:
            response = self._pool.request(
                "GET",
                f"{realm}?{urlencode(query)}",
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
            )
            data = response.read(MAX_TOKEN_BODY)
            response.close()
            response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_fault(exc, f"token endpoint for {self.registry}") from exc
        if response.status in (401, 403):
            raise RegistryAuthError(
                f"{self.registry}: token endpoint refused the credentials (HTTP {response.status})"
            )
        if response.status == 429 or response.status >= 500:
            raise TransientError(f"token endpoint for {self.registry} answered HTTP {response.status}")
        try:
            body = load_json(data, max_bytes=MAX_TOKEN_BODY)
            token = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError) as exc:
            raise RegistryAuthError(
                f"{self.registry}: token endpoint answered HTTP {response.status} without a token"
            ) from exc
        if response.status != 200 or not isinstance(token, str):
            raise RegistryAuthError(
                f"{self.registry}: token endpoint answered HTTP {response.status} without a token"
            )
        with self._lock:
            self._tokens[scope] = (token, self._clock() + max(lifetime - 10.0, 1.0))
        return token
