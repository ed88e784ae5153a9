"""Paginated listings of one registry: tags, referrers (OCI 1.1 API) and the catalog, each name checked;
pages follow RFC 8288 `Link: <url>; rel="next"` headers that stay at the same endpoint."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from urllib3.response import BaseHTTPResponse

from workflow.core.documents import UnreadableJson, load_json
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
                document = load_json(raw)
            except UnreadableJson as exc:
                raise RegistryProtocolError(f"{self.registry}: {what} {exc}") from None
            if not isinstance(document, dict):
                raise RegistryProtocolError(f"{self.registry}: {what} is not a JSON object")
            listed = document.get(key) or []
            if not isinstance(listed, list):
                raise RegistryProtocolError(f"{self.registry}: {what}: '{key}' is not a list")
            names.extend(check(name, f"{self.registry}: {what}") for name in listed)
            return True

        self.paginate(first, repository, what, MAX_PAGES, page)
        return names

    def paginate(
        self,
        first: str,
        repository: str,
        what: str,
        max_pages: int,
        page: Callable[[BaseHTTPResponse], bool],
    ) -> None:
        """Call `page` with each page of a listing that follows `Link: <url>; rel="next"` (its body unread)
        until it returns False or no next page is linked. Each page is one bounded exchange; the next URL
        must stay at the same endpoint, be new, and come within `max_pages` pages."""
        url, path = self.base + first, urlsplit(first).path
        seen: set[str] = set()
        while True:
            if len(seen) == max_pages:
                raise RegistryProtocolError(f"{self.registry}: {what}: more than {max_pages} pages")
            seen.add(url)
            with self.exchange(f"GET {what}"):
                response = self.request("GET", url, repository)
                link = response.headers.get("Link") or ""
                if not page(response):
                    return
            target = _next_target(link)
            if target is None:
                return
            url = paths.same_endpoint(self.base, url, target, path, f"{self.registry}: {what}: Link")
            if url in seen:
                raise RegistryProtocolError(f"{self.registry}: {what}: the Link header loops back to a page")


def _next_target(link: str) -> str | None:
    """The URL of an RFC 8288 `Link: <url>; rel="next"` header, or None."""
    for part in link.split(","):
        if 'rel="next"' in part and "<" in part and ">" in part:
            return part[part.index("<") + 1 : part.index(">")]
    return None
