"""Paginated listings of one registry: tags, referrers (OCI 1.1 API) and the catalog, each name checked."""

from __future__ import annotations

import json
from collections.abc import Callable

from urllib3.response import BaseHTTPResponse

from workflow.core.exceptions import RegistryProtocolError
from workflow.registry import paths
from workflow.registry.media import OCI_INDEX, Descriptor, parse_manifest
from workflow.registry.transport import Transport, discard

MAX_LISTING_PAGE = 4 << 20
MAX_PAGES = 1000  # 1,000 pages of up to 1,000 tags; ECR's ListImageReferrers gives at most 50 a page


class Listings(Transport):
    """The listing half of the distribution API, on top of one registry's transport."""

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """Referrers of `digest` through the OCI 1.1 referrers API; None when the registry lacks it."""
        where = f"{self.registry}/{repository}"
        first = paths.referrers(repository, digest, where)

        def attempt() -> list[Descriptor] | None:
            found: list[Descriptor] = []
            supported = [True]

            def page(response: BaseHTTPResponse) -> bool:
                content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
                if response.status in (404, 405) or (response.status == 200 and content_type != OCI_INDEX):
                    discard(response)
                    supported[0] = False
                    return False
                if response.status != 200:
                    raise self.fail(response, f"GET referrers of {digest} in {repository}")
                raw = self.read(response, MAX_LISTING_PAGE, f"referrers of {digest}")
                found.extend(parse_manifest(raw, OCI_INDEX, "", where).children)
                return True

            self.paginate(first, repository, f"referrers of {digest} in {repository}", MAX_PAGES, page)
            return found if supported[0] else None

        return self.run(attempt, f"referrers of {digest} at {where}")

    def list_tags(self, repository: str) -> list[str]:
        """All tags of `repository` (following pagination); empty when the repository does not exist."""
        where = f"{self.registry}/{repository}"
        first = paths.tags(repository, where) + "?n=1000"
        return self.run(
            lambda: self._listing(first, repository, "tags", f"tags of {repository}", paths.tag),
            f"tags of {where}",
        )

    def list_repositories(self, page_size: int = 1000) -> list[str]:
        """Every repository in `/v2/_catalog` (following pagination)."""
        first = f"{paths.CATALOG}?n={page_size}"
        return self.run(
            lambda: self._listing(first, "", "repositories", "the catalog", paths.repository),
            f"catalog of {self.registry}",
        )

    def _listing(
        self, first: str, repository: str, key: str, what: str, check: Callable[[object, str], str]
    ) -> list[str]:
        """The names under `key` of every page, each checked; empty when the repository does not exist."""
        names: list[str] = []

        def page(response: BaseHTTPResponse) -> bool:
            if response.status == 404 and repository:
                discard(response)
                return False
            if response.status != 200:
                raise self.fail(response, f"GET {what}")
            raw = self.read(response, MAX_LISTING_PAGE, what)
            try:
                listed = json.loads(raw).get(key) or []
            except (ValueError, AttributeError) as exc:
                raise RegistryProtocolError(f"{self.registry}: {what} is not JSON") from exc
            if not isinstance(listed, list):
                raise RegistryProtocolError(f"{self.registry}: {what}: '{key}' is not a list")
            names.extend(check(name, f"{self.registry}: {what}") for name in listed)
            return True

        self.paginate(first, repository, what, MAX_PAGES, page)
        return names
