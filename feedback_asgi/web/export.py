"""``POST {path}/export`` (and ``/export/{kind}``): the export streamed as ``application/x-ndjson``.

Admin only (:func:`feedback_asgi.web.access.require_admin`: 401 without rights). Options are
the CLI's, as query parameters and/or a JSON object body (the body wins): ``kind``
(``finetune`` by default, or in the path), ``format``, ``since``, ``until``, ``model``,
``intent``, ``project``, ``include_neutral``, ``positive_weight``, ``negative_weight``,
``neutral_weight``, ``positive_rating``, ``negative_rating``.

The first chunk is read before the response starts, so an unreachable database is a 503
JSON error; a failure after that aborts the connection (no final chunk), so a client never
mistakes a cut export for a complete file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from feedback_asgi.core.exceptions import FeedbackValidationError, StorageUnavailableError
from feedback_asgi.export import ExportOptions, export_chunks
from feedback_asgi.web.access import require_admin
from feedback_asgi.web.wire import (
    ClientDisconnected,
    HttpError,
    parse_json,
    query_pairs,
    read_body,
    require_json_content_type,
)

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = ["EXPORT_PATH", "owns", "serve_export"]

logger = logging.getLogger("feedback_asgi")

EXPORT_PATH = "/export"
NDJSON = b"application/x-ndjson"


def owns(path: str) -> bool:
    """Whether ``path`` (below the endpoint) is the export route."""
    parts = path.rstrip("/").split("/")
    return parts[1:2] == ["export"] and len(parts) <= 3


async def _options(kit: FeedbackKit, scope: Mapping[str, Any], receive: Any, path: str
                   ) -> ExportOptions:
    """The request's options, resolved (a fixed window); every bad one is a 422 naming it."""
    values: dict[str, Any] = dict(query_pairs(scope))
    body = await read_body(scope, receive, kit.config.max_payload_bytes)
    if body.strip():
        require_json_content_type(scope)
        parsed = parse_json(body)
        if not isinstance(parsed, dict):
            raise HttpError(422, "validation_error", "the body must be a JSON object",
                            {"body": "must be an object"})
        values.update(parsed)
    parts = path.rstrip("/").split("/")
    kind = parts[2] if len(parts) == 3 else values.pop("kind", "finetune")
    values.pop("kind", None)
    try:
        # resolved here: a since after the default until (now) is bad input too
        return ExportOptions.from_mapping(str(kind), values).resolved()
    except FeedbackValidationError as invalid:
        raise HttpError.from_feedback_error(422, invalid) from None


async def serve_export(kit: FeedbackKit, scope: Mapping[str, Any], receive: Any, send: Any,
                       path: str) -> None:
    """Answer one request to the export route (errors as the endpoint's JSON errors)."""
    method = scope.get("method", "GET")
    try:
        if method == "OPTIONS":
            await _send_start(send, 204, [(b"allow", b"POST, OPTIONS")])
            await send({"type": "http.response.body", "body": b""})
            return
        if method != "POST":
            raise HttpError(405, "method_not_allowed", f"{method} is not allowed here",
                            headers=((b"allow", b"POST, OPTIONS"),))
        await kit.ensure_started()
        await require_admin(kit, scope)
        options = await _options(kit, scope, receive, path)
        chunks = export_chunks(kit.store, options)
        try:
            first = await anext(chunks, "")
        except StorageUnavailableError as error:
            raise HttpError(503, "storage_unavailable", error.message,
                            headers=((b"retry-after", b"5"),)) from None
    except HttpError as error:
        await error.reply().send(send)
        return
    except ClientDisconnected:
        return
    filename = f'attachment; filename="feedback-{options.kind}.jsonl"'.encode()
    await _send_start(send, 200, [(b"content-type", NDJSON), (b"cache-control", b"no-store"),
                                  (b"content-disposition", filename)])
    try:
        if first:
            await send({"type": "http.response.body", "body": first.encode(), "more_body": True})
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
    except Exception:
        logger.warning("export stream cut after the response started", exc_info=True)
        raise
    finally:
        await chunks.aclose()
    await send({"type": "http.response.body", "body": b""})


async def _send_start(send: Any, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
