"""Keeping secrets out of what is stored: header filtering and redaction of captured bodies.

Pure functions over bytes, header lists and JSON-like values, shared by the ASGI and the
Django middleware. The work is bounded: bodies are at most the capture limit, JSON walks
stop at :data:`MAX_DEPTH` levels and :data:`MAX_NODES` values (what lies beyond is replaced
by :data:`REDACTED`, never kept unredacted).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "ALWAYS_REDACTED_HEADERS",
    "MAX_DEPTH",
    "MAX_NODES",
    "REDACTED",
    "Redactor",
    "decode_body",
    "filter_headers",
    "redactor_for",
    "within_bounds",
]

REDACTED = "[redacted]"
"""What replaces a redacted value."""

ALWAYS_REDACTED_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "x-feedback-token",
        "x-api-key",
    }
)
"""Header names never captured, whatever the configuration says."""

MAX_DEPTH = 64
MAX_NODES = 100_000

_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "+json", "xml",
               "javascript", "application/x-ndjson")


def filter_headers(
    headers: Iterable[tuple[bytes, bytes]], redacted: frozenset[str] = ALWAYS_REDACTED_HEADERS
) -> dict[str, str]:
    """Headers as a ``{lowercase name: value}`` dict without the ``redacted`` ones.

    ``redacted`` holds lowercase names; repeated headers are joined with ``", "``.
    """
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name in redacted or name in ALWAYS_REDACTED_HEADERS:
            continue
        value = raw_value.decode("latin-1")
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


class Redactor:
    """Replaces the values of configured keys in JSON values, JSON text and form bodies.

    Keys match case-insensitively. Values other than dict, list, tuple, str, int, float,
    bool and ``None`` are converted (``model_dump()``, dataclasses, else ``str()``) so the
    result is JSON-ready.
    """

    __slots__ = ("_form", "_json_text", "_key_bytes", "key_list", "keys")

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = frozenset(key.lower() for key in keys)
        self.key_list: tuple[str, ...] = tuple(sorted(self.keys))
        """The keys, sorted: what :func:`redactor_for` rebuilds an equal redactor from."""
        # for the clean-body check: only ASCII keys can be found by a bytewise search
        self._key_bytes: tuple[tuple[bytes, tuple[bytes, ...]], ...] | None = (
            tuple(
                (key, (b'"' + key + b'"', b'"' + key + b"\\", key + b"="))
                for key in (name.encode() for name in sorted(self.keys))
            )
            if all(key.isascii() for key in self.keys) else None
        )
        if self.keys:
            names = "|".join(re.escape(key) for key in sorted(self.keys))
            # "key": "value (a closing quote may be missing in a truncated body) or "key": 123
            self._json_text: re.Pattern[str] | None = re.compile(
                rf'("(?:{names})"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}}\]\s]+)', re.IGNORECASE
            )
            self._form: re.Pattern[str] | None = re.compile(
                rf"((?:^|[&?;\s])(?:{names})=)([^&;\s]*)", re.IGNORECASE
            )
        else:
            self._json_text = None
            self._form = None

    def redact_value(self, value: Any) -> Any:
        """A JSON-ready copy of ``value`` with the configured keys' values redacted."""
        budget = [MAX_NODES]
        return self._walk(value, 0, budget)

    def _walk(self, value: Any, depth: int, budget: list[int]) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            return REDACTED
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.redact_text(value) if self.keys and len(value) > 2 else value
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                name = key if isinstance(key, str) else str(key)
                if name.lower() in self.keys:
                    result[name] = REDACTED
                else:
                    result[name] = self._walk(item, depth + 1, budget)
            return result
        if isinstance(value, list | tuple):
            return [self._walk(item, depth + 1, budget) for item in value]
        if isinstance(value, bytes | bytearray):
            return self.redact_text(bytes(value).decode("utf-8", "replace"))
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            return self._walk(dump(mode="json"), depth + 1, budget)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._walk(dataclasses.asdict(value), depth + 1, budget)
        return self.redact_text(str(value))

    def redact_text(self, text: str) -> str:
        """``text`` with ``"key": value`` pairs and ``key=value`` form fields redacted."""
        if self._json_text is None or self._form is None:
            return text
        # both patterns need a quote or an equals sign: most strings have neither
        if '"' in text:
            text = self._json_text.sub(rf'\1"{REDACTED}"', text)
        if "=" in text:
            text = self._form.sub(rf"\1{REDACTED}", text)
        return text

    def is_clean(self, data: bytes) -> bool:
        """Whether no configured key can be redacted in anything decoded from ``data``.

        Every redaction needs a configured key between quotes (an object key, or
        ``"key":`` inside a string, whose closing quote is escaped as ``\\"`` in the raw
        body) or right before ``=`` (a form field). So ``data`` is clean when it is ASCII,
        has no ``\\u`` escape (which could spell a key) and has no key in any letter case
        that is quoted or followed by an equals sign: ``"tokens"`` or ``"max_tokens"`` is no
        ``"token"``. A clean body holds nothing to redact; :func:`within_bounds` says whether
        its JSON also needs no walk.
        """
        key_bytes = self._key_bytes
        if key_bytes is None:
            return False
        if not data:  # most GET requests: no key can hide in no bytes
            return True
        if not data.isascii():
            return False
        lowered = data.lower()
        if b"\\" in lowered and b"\\u" in lowered:
            return False
        for key, needles in key_bytes:
            # a key with a quote before it and a quote or backslash after it, or an equals
            # sign after it: three substring searches instead of a walk over every match
            if key in lowered and any(needle in lowered for needle in needles):
                return False
        return True


@functools.lru_cache(maxsize=64)
def redactor_for(keys: tuple[str, ...]) -> Redactor:
    """The shared :class:`Redactor` for ``keys`` (built once per set of keys)."""
    return Redactor(keys)


def within_bounds(data: bytes) -> bool:
    """Whether JSON parsed from ``data`` is certainly within :data:`MAX_NODES` values and
    :data:`MAX_DEPTH` levels (every value takes a byte, every level an opening bracket)."""
    return len(data) < MAX_NODES and data.count(b"[") + data.count(b"{") <= MAX_DEPTH


def _is_text(content_type: str) -> bool:
    return any(marker in content_type for marker in _TEXT_TYPES)


def decode_body(
    data: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    truncated: bool,
    redactor: Redactor,
) -> tuple[Any, dict[str, Any]]:
    """The storable form of a captured body, and facts about it for the exchange metadata.

    An encoded body (``Content-Encoding`` other than identity) is not decoded: the value is
    ``None`` and the facts say ``{"encoding": ...}``. A complete JSON body becomes the parsed,
    redacted value; a truncated or invalid one stays text (redacted as text). Non-text
    content types give ``None`` and ``{"binary": True}``.
    """
    if not data:
        return None, {}
    encoding = (content_encoding or "").strip().lower()
    if encoding and encoding != "identity":
        return None, {"encoding": encoding}
    kind = (content_type or "").lower()
    if kind and not _is_text(kind):
        return None, {"binary": True, "content_type": kind.split(";")[0].strip()}
    looks_json = "json" in kind or (not kind and data[:1] in (b"{", b"["))
    clean = redactor.is_clean(data)
    if looks_json and not truncated:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            pass
        else:
            # nothing to redact and within the walk's bounds: the walk would copy it as is
            keep = clean and within_bounds(data)
            return (value if keep else redactor.redact_value(value)), {}
    if not kind:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            if not truncated:
                return None, {"binary": True}
            # a multi-byte character may have been cut at the limit
            text = data.decode("utf-8", "replace")
    else:
        text = data.decode("utf-8", "replace")
    return (text if clean else redactor.redact_text(text)), {}
