"""The files the kit serves to browsers (the feedback widget), with ETag revalidation.

The files ship inside the package (``feedback_asgi/static/``) and are read once per process.
:func:`asset_reply` answers ``GET``/``HEAD`` for one of them: the bytes with their content
type, ``Cache-Control``, a strong ``ETag`` (a digest of the bytes, so it changes with each
release that changes the file) and ``304 Not Modified`` when ``If-None-Match`` matches.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from feedback_asgi.web.wire import Reply, header

__all__ = ["ASSETS", "WIDGET_PATH", "Asset", "AssetReply", "asset_reply", "load_asset"]

WIDGET_PATH = "/widget.js"
"""Where the widget is served, below the feedback path (``/feedback/widget.js``)."""

ASSETS: dict[str, tuple[str, bytes]] = {
    WIDGET_PATH: ("feedback-widget.js", b"text/javascript; charset=utf-8"),
    "/dashboard/dashboard.css": ("dashboard.css", b"text/css; charset=utf-8"),
    "/dashboard/icon.svg": ("dashboard-icon.svg", b"image/svg+xml"),
}
"""Route below the feedback path -> (file in ``feedback_asgi/static``, content type)."""

CACHE_CONTROL = b"public, max-age=300"
"""Short freshness, then a cheap revalidation by ETag: an upgrade reaches browsers quickly."""


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file: its bytes, content type and ETag (quoted, as sent)."""

    body: bytes
    content_type: bytes
    etag: bytes


@functools.cache
def load_asset(route: str) -> Asset:
    """The asset served at ``route`` (a key of :data:`ASSETS`), read once from the package."""
    name, content_type = ASSETS[route]
    body = resources.files("feedback_asgi").joinpath("static", name).read_bytes()
    etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
    return Asset(body, content_type, etag)


@dataclass(frozen=True, slots=True)
class AssetReply(Reply):
    """A :class:`Reply` for a static file: its own content type and cache headers."""

    content_type: bytes = b"application/octet-stream"
    etag: bytes = b""

    def with_headers(self, extra: Iterable[tuple[bytes, bytes]]) -> AssetReply:
        """A copy with ``extra`` headers appended."""
        return AssetReply(
            self.status, self.body, (*self.headers, *extra), self.content_type, self.etag
        )

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """Validators and caching on every answer; type and length unless it is a 304."""
        cache = [(b"etag", self.etag), (b"cache-control", CACHE_CONTROL)]
        if self.status == 304:
            return [*cache, *self.headers]
        return [
            (b"content-type", self.content_type),
            (b"content-length", str(len(self.body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            *cache,
            *self.headers,
        ]


def _matches(if_none_match: str, etag: bytes) -> bool:
    # weak comparison, as RFC 9110 wants for If-None-Match
    wanted = etag.decode()
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def asset_reply(scope: Mapping[str, Any], route: str) -> AssetReply:
    """The answer to a ``GET``/``HEAD`` of the asset at ``route``: 200, or 304 if unchanged."""
    asset = load_asset(route)
    condition = header(scope, b"if-none-match")
    if condition is not None and _matches(condition, asset.etag):
        return AssetReply(304, b"", (), asset.content_type, asset.etag)
    return AssetReply(200, asset.body, (), asset.content_type, asset.etag)
