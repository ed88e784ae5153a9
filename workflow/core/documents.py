"""Untrusted JSON (what a registry, a signature or a secret holds) parsed within bounds: size, then depth.

CPython's decoder recurses once per nesting level and raises RecursionError past about 1,000 levels
(`sys.getrecursionlimit()`), an error no caller expects; a distribution registry stores a manifest nested
10,000 deep as readily as any other document. So `load_json` refuses a document larger than `max_bytes`,
then measures its nesting without recursion (strings removed, innermost bracket pairs dropped one level a
pass) and refuses one deeper than `max_depth`, before the decoder sees it. Every refusal is
`UnreadableJson`, a ValueError like the decoder's own errors, whose text says which bound was broken and
never echoes the document.
"""

from __future__ import annotations

import json
import re
from typing import Any

# An OCI index's deepest values (a descriptor's platform, its annotations) are 4 levels down; a Notation
# envelope's 3; a Docker config's 4. 64 leaves room for any honest document, far below the recursion limit.
MAX_DEPTH = 64
MAX_BYTES = 4 << 20  # the largest manifest the copy reads (workflow.registry.client.MAX_MANIFEST_BYTES)
# A string, or an unterminated one to the end: possessive, so it always matches and every scan is linear.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SQUARE = str.maketrans("{}", "[]")


class UnreadableJson(ValueError):
    """A document that is not JSON, or breaks a bound; the text says which (`is not JSON (...)`, ...)."""


def _text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        # As json.loads does for bytes: UTF-8, -16 or -32 by the first bytes.
        return raw.decode(json.detect_encoding(raw), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        raise UnreadableJson("is not JSON (not UTF-8, -16 or -32 text)") from None


def nesting_problem(text: str, max_depth: int = MAX_DEPTH) -> str | None:
    """Why `text` must not reach the decoder (deeper than `max_depth`, or brackets that never close); or None."""
    structure = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_SQUARE)
    for _ in range(max_depth):
        if not structure:
            return None
        shorter = structure.replace("[]", "")
        if len(shorter) == len(structure):
            return "is not JSON (its brackets do not pair up)"
        structure = shorter
    return f"nests deeper than {max_depth} levels" if structure else None


def load_json(raw: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `raw`; UnreadableJson when it is larger than `max_bytes`, deeper than `max_depth`
    or not JSON."""
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > max_bytes:
        raise UnreadableJson(f"is {size:,} bytes, more than the {max_bytes:,} read")
    text = _text(raw)
    problem = nesting_problem(text, max_depth)
    if problem:
        raise UnreadableJson(problem)
    try:
        return json.loads(text)
    except ValueError as error:
        raise UnreadableJson(f"is not JSON ({type(error).__name__}: {_position(error)})") from None


def _position(error: ValueError) -> str:
    """The decoder's reason without any of the document (JSONDecodeError's msg and position)."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at character {error.pos}"
    return "unreadable value"
