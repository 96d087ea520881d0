"""Small HTTP helpers for the feedback endpoint, framework-neutral and pure ASGI.

JSON replies that set ``content-length`` from the encoded bytes, the error body
``{"error": {"code", "message", "fields"}}``, a body reader that never pulls ``receive``
past the size limit, a strict JSON parser (no duplicate keys, no NaN/Infinity, no
overflowing numbers, bounded nesting checked before parsing), a strict query string parser
(UTF-8 or a 422), and :func:`id_can_exist` for ids taken from a path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from feedback_asgi.core.exceptions import FeedbackError, FeedbackValidationError
from feedback_asgi.storage.base import key_problem

__all__ = [
    "ClientDisconnected",
    "HttpError",
    "Reply",
    "error_reply",
    "header",
    "id_can_exist",
    "json_reply",
    "parse_json",
    "query_pairs",
    "read_body",
    "require_json_content_type",
]

JSON_CONTENT_TYPE = b"application/json"
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays/objects accepted in a request body."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete response: status, encoded body and extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = field(default=())

    def with_headers(self, extra: Iterable[tuple[bytes, bytes]]) -> Reply:
        """A copy with ``extra`` headers appended."""
        return Reply(self.status, self.body, (*self.headers, *extra))

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """The response headers: JSON content type and exact length, then the extras.

        A 204 carries neither a body nor ``content-type``/``content-length``.
        """
        if self.status == 204:
            return list(self.headers)
        return [
            (b"content-type", JSON_CONTENT_TYPE),
            (b"content-length", str(len(self.body)).encode()),
            (b"cache-control", b"no-store"),
            *self.headers,
        ]

    async def send(self, send: Any, *, head: bool = False) -> None:
        """Send as two ASGI messages; ``head`` keeps the headers and drops the body."""
        await send(
            {"type": "http.response.start", "status": self.status, "headers": self.header_list()}
        )
        body = b"" if head or self.status == 204 else self.body
        await send({"type": "http.response.body", "body": body})


def json_reply(
    status: int, payload: object, headers: Iterable[tuple[bytes, bytes]] = ()
) -> Reply:
    """A JSON reply (compact UTF-8)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    return Reply(status, body.encode("utf-8"), tuple(headers))


def error_reply(
    status: int,
    code: str,
    message: str,
    fields: Mapping[str, str] | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> Reply:
    """The documented error body ``{"error": {"code", "message", "fields"}}``."""
    payload = {"error": {"code": code, "message": message, "fields": dict(fields or {})}}
    return json_reply(status, payload, headers)


class HttpError(Exception):
    """An expected failure that maps to one error reply."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, str] | None = None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.headers = tuple(headers)

    @classmethod
    def from_feedback_error(cls, status: int, error: FeedbackError) -> HttpError:
        """Carry a library error's code, message and field details."""
        fields = error.fields if isinstance(error, FeedbackValidationError) else {}
        return cls(status, error.code, error.message, fields)

    def reply(self) -> Reply:
        """The error reply."""
        return error_reply(self.status, self.code, self.message, self.fields, self.headers)


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase bytes), decoded as latin-1."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def id_can_exist(value: str) -> bool:
    """Whether ``value``, an id from a path, could name a stored item or session.

    One that cannot (empty, over 255 characters, NUL, a lone surrogate: see
    :func:`~feedback_asgi.storage.base.key_problem`) is answered like an unknown id,
    without asking the store (PostgreSQL would refuse the NUL with an error).
    """
    return key_problem(value) is None


def _query_text(raw: bytes) -> str | None:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:  # strict: an encoded lone surrogate is refused too
        return None


def query_pairs(scope: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The query string's ``(name, value)`` pairs, in order, blanks kept.

    ``+`` is a space and percent-escapes are decoded; the bytes must be UTF-8. A name or
    value that is not raises the 422 :class:`HttpError` naming the parameter, rather than
    reading it with replacement characters.
    """
    pairs: list[tuple[str, str]] = []
    for part in bytes(scope.get("query_string", b"")).split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = _query_text(raw_name)
        if name is None:
            shown = raw_name.decode("latin-1").encode("ascii", "backslashreplace").decode()
            raise HttpError(422, "validation_error", "a parameter name is not valid UTF-8",
                            {shown: "not valid UTF-8"})
        value = _query_text(raw_value)
        if value is None:
            raise HttpError(422, "validation_error", f"{name}: not valid UTF-8",
                            {name: "not valid UTF-8"})
        pairs.append((name, value))
    return pairs


def require_json_content_type(scope: Mapping[str, Any]) -> None:
    """Raise 415 unless the request says ``application/json`` (or ``*/*+json``) in UTF-8."""
    value = header(scope, b"content-type")
    if value is None:
        raise HttpError(415, "unsupported_media_type", "Content-Type must be application/json")
    media, _, params = value.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise HttpError(
            415, "unsupported_media_type", f"Content-Type must be application/json, not {media!r}"
        )
    for param in params.split(";"):
        name, _, raw = param.partition("=")
        if name.strip().lower() == "charset" and raw.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            raise HttpError(415, "unsupported_media_type", "JSON must be encoded as UTF-8")


def _too_large(limit: int) -> HttpError:
    return HttpError(413, "payload_too_large", f"request body is larger than {limit} bytes")


async def read_body(scope: Mapping[str, Any], receive: Any, limit: int) -> bytes:
    """The whole request body, at most ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is read; a
    chunked body is counted as it arrives and ``receive`` is not called again once the
    limit is passed. Raises :class:`HttpError` (400, 413) or :class:`ClientDisconnected`.
    """
    declared = header(scope, b"content-length")
    if declared is not None:
        declared = declared.strip()
        if not declared.isdigit():
            raise HttpError(400, "invalid_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "http.disconnect":
            raise ClientDisconnected()
        if kind != "http.request":
            continue
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _JsonProblem(ValueError):
    pass


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _JsonProblem(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise _JsonProblem(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _JsonProblem(f"number {text[:32]} is out of range")
    return number


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _nesting_exceeds(body: bytes, max_depth: int) -> bool:
    # Cheap first: fewer openers than the limit cannot nest deeper than it.
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    depth = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub(b"", body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a request body strictly; raise :class:`HttpError` 400 on anything off."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "invalid_json", "request body is not valid UTF-8") from None
    if _nesting_exceeds(body, max_depth):
        raise HttpError(400, "invalid_json", f"JSON is nested deeper than {max_depth} levels")
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_object,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except _JsonProblem as exc:
        raise HttpError(400, "invalid_json", f"invalid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError is a ValueError; so is an integer past Python's digit limit.
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise HttpError(400, "invalid_json", f"malformed JSON: {detail}") from None
