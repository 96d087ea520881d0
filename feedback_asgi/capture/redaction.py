"""Keeping secrets out of what is stored: header filtering and redaction of captured bodies.

Pure functions over bytes, header lists and JSON-like values, shared by the ASGI and the
Django middleware and the collector. What counts as a secret (key names, value patterns)
is in :mod:`feedback_asgi.core.secret_rules`. The work is bounded: bodies are at most the
capture limit, JSON walks stop at :data:`MAX_DEPTH` levels and :data:`MAX_NODES` values
(what lies beyond is replaced by :data:`REDACTED`, never kept unredacted).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from feedback_asgi.core.secret_rules import (
    REDACTED,
    SECRET_NAME_PARTS,
    SECRET_NAMES,
    VALUE_PATTERNS,
    SecretScan,
    card_like_int,
    name_part_pattern,
    normalise_name,
    scan_needles,
)

if TYPE_CHECKING:
    from feedback_asgi.core.config import FeedbackConfig

__all__ = [
    "ALWAYS_REDACTED_HEADERS",
    "MAX_DEPTH",
    "MAX_NODES",
    "REDACTED",
    "DroppedHeaders",
    "Redactor",
    "config_redactor",
    "decode_body",
    "filter_headers",
    "redactor_for",
    "within_bounds",
]

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
"""Header names never captured, whatever the configuration says (exemptions included)."""

MAX_DEPTH = 64
MAX_NODES = 100_000
_MAX_CACHED_NAMES = 4096
"""Most verdicts on names kept per redactor (names come from clients: bounded)."""

_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "+json", "xml",
               "javascript", "application/x-ndjson")

# "key": (JSON, or \"key\": inside raw JSON text) and key= / key: (forms, query strings,
# prose); an unquoted key may be up to three words ("api key: ...")
_FRAGMENT_KEY = re.compile(
    r"""
    (?:
        (?P<q>\\?["'])(?P<qkey>[^"'\\\r\n]{1,64})(?P=q)
      | (?<![\w.%+-])(?P<key>[A-Za-z_][\w.%+-]{0,63}(?:[ ][A-Za-z][\w.%+-]{0,31}){0,2})
    )
    [ \t]*[:=][ \t]*
    """,
    re.VERBOSE,
)
# what follows a secret key: a string (its end may be cut off), or a bare value up to a
# separator, with an authorization scheme's word before it
_FRAGMENT_VALUE = re.compile(
    r"""
        \\"(?:[^"\\]|\\[^"])*(?:\\")?
      | "(?:[^"\\\r\n]|\\.)*"?
      | '[^'\r\n]*'?
      | (?:(?i:bearer|basic|token|digest|negotiate)[ \t]+)?[^\s,;&"'<>{}\[\]()]+
    """,
    re.VERBOSE,
)
_URL_PARAMETER = re.compile(r"(?<=[?&;#])([^&;#=]*=)[^&;#]*")
_SENT_NAME = operator.itemgetter(0)


@functools.lru_cache(maxsize=16)
def _scan_for(fields: tuple[str, ...]) -> SecretScan:
    return SecretScan(scan_needles(fields))


def _covered_by_builtins(field: str) -> bool:
    """Whether an extra name part is left to the built-in rule: it holds a built-in part
    (``client_password``), or is one whose rule knows better (``token``: not ``tokens``)."""
    return field in SECRET_NAME_PARTS or any(
        part in field for part, keep in SECRET_NAME_PARTS.items() if not keep
    )


def _replace_nonempty(match: re.Match[str]) -> str:
    # an extra pattern that can match nothing must not write the marker between letters
    return REDACTED if match.end() > match.start() else ""


class Redactor:
    """Replaces secrets in JSON values, JSON text, form bodies, header values and URLs.

    A key (JSON, form field, query parameter, ``key: value`` in text, header name) is a
    secret's when its name, with case, ``-``, ``_`` and spaces ignored, contains one of the
    built-in parts or of ``fields``, or is one of the built-in whole names, and is not in
    ``exempt`` (whole names); its value is replaced whole. Every string is also searched
    for the built-in value patterns and for ``patterns`` (extra regular expressions): what
    they match is replaced. Values other than dict, list, tuple, str, int, float, bool and
    ``None`` are converted (``model_dump()``, dataclasses, else ``str()``) so the result is
    JSON-ready.
    """

    __slots__ = ("_exempt", "_name_rule", "_names", "_patterns", "_scan", "key_list")

    def __init__(
        self, fields: Iterable[str] = (), *, exempt: Iterable[str] = (),
        patterns: Iterable[str] = (),
    ) -> None:
        self.key_list = Redactor.spec(fields, exempt, patterns)
        """The settings, normalised: what :func:`redactor_for` rebuilds an equal redactor from."""
        extra, exempted, extra_patterns = self.key_list
        self._exempt = frozenset(exempted)
        parts = [name_part_pattern(part, keep) for part, keep in SECRET_NAME_PARTS.items()]
        parts.extend(re.escape(part) for part in extra)
        self._name_rule = re.compile("|".join(parts))
        self._names: dict[str, bool] = {}
        replacements: list[tuple[re.Pattern[str], Any]] = [
            (pattern.regex, pattern.replace) for pattern in VALUE_PATTERNS
        ]
        replacements.extend((re.compile(source), _replace_nonempty) for source in extra_patterns)
        self._patterns = tuple(replacements)
        # an extra pattern can match anything, a non-ASCII name part is not searched bytewise:
        # then nothing is known to be clean
        searchable = not extra_patterns and all(part.isascii() for part in extra)
        self._scan = _scan_for(extra) if searchable else None

    @staticmethod
    def spec(
        fields: Iterable[str], exempt: Iterable[str], patterns: Iterable[str]
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """The normalised settings of a redactor (what its ``key_list`` holds)."""
        extra = {normalise_name(field) for field in fields} - {""}
        return (
            tuple(sorted(field for field in extra if not _covered_by_builtins(field))),
            tuple(sorted({normalise_name(name) for name in exempt} - {""})),
            tuple(dict.fromkeys(patterns)),
        )

    def is_secret_name(self, name: str) -> bool:
        """Whether values under the key ``name`` are redacted whole."""
        verdict = self._names.get(name)
        if verdict is None:
            normal = normalise_name(name)
            verdict = normal not in self._exempt and (
                normal in SECRET_NAMES or self._name_rule.search(normal) is not None
            )
            if len(self._names) < _MAX_CACHED_NAMES:
                self._names[name] = verdict
        return verdict

    # JSON values

    def redact_value(self, value: Any) -> Any:
        """A JSON-ready copy of ``value`` with secrets redacted."""
        budget = [MAX_NODES]
        return self._walk(value, 0, budget)

    def _walk(self, value: Any, depth: int, budget: list[int]) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            return REDACTED
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            return REDACTED if card_like_int(value) else value
        if isinstance(value, str):
            return self.redact_text(value) if len(value) > 2 else value
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                name = key if isinstance(key, str) else str(key)
                if self.is_secret_name(name) and not _llm_token(name, value):
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

    def is_clean_value(self, value: Any) -> bool:
        """Whether :meth:`redact_value` would return ``value`` unchanged, known without a walk.

        Only plain JSON values (dict with string keys, list, str, int, float, bool, None)
        within the walk's bounds can be clean; a ``False`` may be wrong, a ``True`` never is.
        """
        scan = self._scan
        if scan is None:
            return False
        texts: list[str] = []
        stack: list[tuple[Any, int]] = [(value, 0)]
        nodes = 0
        while stack:
            item, depth = stack.pop()
            nodes += 1
            if nodes > MAX_NODES or depth > MAX_DEPTH:
                return False
            if isinstance(item, str):
                texts.append(item)
            elif item is None or isinstance(item, bool | float):
                continue
            elif isinstance(item, int):
                if card_like_int(item):
                    return False
            elif isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        return False
                    texts.append(key)
                    stack.append((child, depth + 1))
            elif isinstance(item, list):
                stack.extend((child, depth + 1) for child in item)
            else:
                return False  # converted or copied by the walk
        return not texts or not scan.text_may_match("\x00".join(texts))

    # text

    def redact_text(self, text: str) -> str:
        """``text`` with ``"key": value`` pairs, ``key=value`` fields and value patterns redacted."""
        scan = self._scan
        if scan is not None and not scan.text_may_match(text):
            return text
        return self._replace(text)

    def _replace(self, text: str) -> str:
        if ":" in text or "=" in text:
            text = self._redact_fragments(text)
        for regex, replace in self._patterns:
            text = regex.sub(replace, text)
        return text

    def _redact_fragments(self, text: str) -> str:
        """``text`` with the value after every secret key (``"key":``, ``key=``) redacted.

        The search goes on right after each key, so a key inside another key's value (a
        query string in a URL, JSON inside a JSON string) is found too.
        """
        parts: list[str] = []
        done = 0
        match = _FRAGMENT_KEY.search(text)
        while match is not None:
            at = match.end()
            key = match.group("qkey") or match.group("key")
            if "%" in key or "+" in key:
                key = unquote_plus(key)
            value = _FRAGMENT_VALUE.match(text, at) if self.is_secret_name(key) else None
            if value is not None:
                found = value.group()
                quote = next((mark for mark in ('\\"', '"', "'") if found.startswith(mark)), None)
                if quote is None:  # a bare value: quoted after a JSON key, bare in a form
                    key_quote = match.group("q")
                    quote = key_quote if key_quote in ('"', '\\"') else ""
                parts.append(text[done:at])
                parts.append(f"{quote}{REDACTED}{quote}")
                done = at = value.end()
            match = _FRAGMENT_KEY.search(text, at)
        if not parts:
            return text
        parts.append(text[done:])
        return "".join(parts)

    def redact_header_value(self, value: str) -> str:
        """A request header's value with secrets redacted; when it is a URL (``Referer``,
        ``Origin``, ``X-Original-URL``...) the value of every query and fragment parameter
        is redacted, whatever its name (one-time codes have all sorts of names)."""
        if value.startswith(("http://", "https://", "/")) or "://" in value[:40]:
            start = min((at for at in (value.find("?"), value.find("#")) if at >= 0),
                        default=-1)
            if start >= 0:
                value = value[:start] + _URL_PARAMETER.sub(rf"\1{REDACTED}", value[start:])
        scan = self._scan
        return value if scan is not None and not scan.text_may_match(value) else self._replace(value)

    # bytes

    def is_clean(self, data: bytes) -> bool:
        """Whether nothing decoded from ``data`` (JSON, form or text) would be redacted.

        A quick search of the body folded to lowercase without separators for every
        secret name part and value pattern, never a walk. It may say "not clean" for a
        body with nothing to redact (``tokens`` and ``author`` are clean, ``basic``
        is not); it never says "clean" for one with something to redact. A clean body
        holds nothing to redact; :func:`within_bounds` says whether its JSON also needs
        no walk.
        """
        scan = self._scan
        if scan is None:
            return False
        if not data:  # most GET requests: nothing can hide in no bytes
            return True
        return not scan.body_may_match(data)


def _llm_token(name: str, siblings: dict[Any, Any]) -> bool:
    # {"token": "Hello", "logprob": -0.1}: a token of an LLM's output, with its probability
    return "logprob" in siblings and normalise_name(name) == "token"


@functools.lru_cache(maxsize=64)
def redactor_for(
    spec: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]],
) -> Redactor:
    """The shared :class:`Redactor` for a ``key_list`` (built once per set of settings)."""
    fields, exempt, patterns = spec
    return Redactor(fields, exempt=exempt, patterns=patterns)


def config_redactor(config: FeedbackConfig) -> Redactor:
    """The shared :class:`Redactor` for a configuration's ``redact_*`` settings."""
    return redactor_for(Redactor.spec(
        config.redact_fields, config.redact_exempt_fields, config.redact_patterns
    ))


class DroppedHeaders(frozenset[bytes]):
    """Request header names never kept: these exact lowercase names, and every name the
    redactor's name rule matches (``X-Auth-Token``, ``Api-Key``, ``X-CSRF-Token``...).

    ``name in dropped`` answers for a name in any letter case (verdicts are cached per
    name); iterating, comparing and ``isdisjoint`` see the exact names only.
    """

    __slots__ = ("_redactor", "_verdicts")

    _redactor: Redactor
    _verdicts: dict[bytes, bool]

    def __new__(cls, names: Iterable[bytes], redactor: Redactor) -> DroppedHeaders:
        """The exact ``names`` (lowercase) and the rule of ``redactor``."""
        self = super().__new__(cls, names)
        self._redactor = redactor
        self._verdicts = {}
        return self

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, bytes):
            return False
        verdict = self._verdicts.get(name)
        if verdict is None:
            lowered = name.lower()
            verdict = frozenset.__contains__(self, lowered) or self._redactor.is_secret_name(
                lowered.decode("latin-1")
            )
            if len(self._verdicts) < _MAX_CACHED_NAMES:
                self._verdicts[name] = verdict
        return verdict

    def keeps_all(self, headers: Sequence[Sequence[bytes]]) -> bool:
        """Whether no header of an ASGI header list is dropped.

        Names seen before are answered in one pass at C speed (no regex, no lowercasing);
        a new name is judged once and remembered.
        """
        try:
            return not any(map(self._verdicts.__getitem__, map(_SENT_NAME, headers)))
        except KeyError:
            pass
        kept = True
        for header in headers:
            if header[0] in self:  # judges and remembers every name, not just the first
                kept = False
        return kept


def filter_headers(
    headers: Iterable[tuple[bytes, bytes]],
    redacted: frozenset[str] = ALWAYS_REDACTED_HEADERS,
    *,
    redactor: Redactor | None = None,
) -> dict[str, str]:
    """Headers as a ``{lowercase name: value}`` dict without the secret ones.

    Dropped: the ``redacted`` lowercase names, :data:`ALWAYS_REDACTED_HEADERS` and the
    names ``redactor``'s rule matches (the built-in rule by default); kept values go
    through :meth:`Redactor.redact_header_value`. Repeated headers are joined with ``", "``.
    """
    rules = redactor if redactor is not None else redactor_for(Redactor.spec((), (), ()))
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name in redacted or name in ALWAYS_REDACTED_HEADERS or rules.is_secret_name(name):
            continue
        value = rules.redact_header_value(raw_value.decode("latin-1"))
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


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
    content types (``multipart/form-data`` included) give ``None`` and ``{"binary": True}``.
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
