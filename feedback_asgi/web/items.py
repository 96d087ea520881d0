"""The read/admin routes of the feedback endpoint, and edit/retract by the submitter.

Relative to the endpoint's path:

* ``GET /stats?window=7d&by=model&model=...`` and ``GET /stats/timeseries?interval=day&...``
  (:mod:`feedback_asgi.analytics`; ``unique=true`` adds distinct users and sessions);
* ``GET /?type=&model=&session=&user=&trace=&request_id=&otel_trace_id=&since=&until=&limit=&cursor=``:
  live items,
  newest first, ``{"items": [...], "next_cursor"}`` (keyset pagination);
* ``GET /{id}``: ``{"item", "history", "current_id"}`` (the row, its chain oldest first,
  and the live version's id, ``null`` once retracted);
* ``PUT /{id}`` (``{"value", "comment"?, "metadata"?}``) and ``PATCH /{id}`` (the fields to
  change): a new row superseding the chain's latest version; ``200 {"status", "feedback_id",
  "supersedes"}``;
* ``DELETE /{id}``: a retraction row; ``204``.

Stats and listings need read/admin rights (:mod:`feedback_asgi.web.access`); an item's own
submitter may also read, edit and retract it with its feedback token.

Bad input is refused before the store is asked, one rule per kind of value: an item id
that no item can have (:func:`~feedback_asgi.web.wire.id_can_exist`) is a 404 like any unknown
id; a query string that is not UTF-8, an unknown or repeated parameter, a filter no item
can match (:func:`~feedback_asgi.storage.base.key_problem`), a forged cursor, and a time
outside :func:`~feedback_asgi.storage.base.check_time`'s range are each a 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from feedback_asgi.analytics import feedback_stats, feedback_timeseries
from feedback_asgi.core.exceptions import FeedbackError, FeedbackValidationError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.storage.base import check_time, decode_cursor, key_problem
from feedback_asgi.web.access import ItemAccess, item_access, require_admin
from feedback_asgi.web.submission import check_metadata_keys
from feedback_asgi.web.wire import (
    HttpError,
    Reply,
    header,
    id_can_exist,
    json_reply,
    parse_json,
    query_pairs,
    read_body,
    require_json_content_type,
)

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = ["ITEM_METHODS", "RESERVED_NAMES", "allowed_methods", "dispatch", "owns"]

ITEM_METHODS = ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS")
RESERVED_NAMES = frozenset({"health", "widget.js", "sessions", "stats", "export"})
"""First path segments that are other routes, never an item id."""
LIST_LIMIT_MAX = 500
_STATS_PARAMS = {"window", "since", "until", "by", "model", "provider", "intent", "project",
                 "endpoint", "request_id", "otel_trace_id", "unique"}
_LIST_PARAMS = {"type", "model", "session", "user", "trace", "request_id", "otel_trace_id",
                "since", "until", "limit", "cursor"}
_EDIT_FIELDS = {"value", "comment", "metadata", "token"}


def owns(path: str, method: str) -> bool:
    """Whether ``method path`` is one of these routes (the endpoint asks before its own)."""
    if path in ("/stats", "/stats/timeseries"):
        return True
    if path == "/":
        return method in ("GET", "HEAD")
    parts = path.split("/")
    return len(parts) == 2 and bool(parts[1]) and parts[1] not in RESERVED_NAMES \
        and method in ITEM_METHODS


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods of a path :func:`owns` (for 405 and CORS preflights)."""
    if path in ("/stats", "/stats/timeseries", "/"):
        return ("GET", "HEAD", "OPTIONS")
    return ITEM_METHODS


# query strings


def _params(scope: Mapping[str, Any], allowed: set[str]) -> dict[str, str]:
    parsed: dict[str, list[str]] = {}
    for name, value in query_pairs(scope):
        parsed.setdefault(name, []).append(value)
    unknown = sorted(set(parsed) - allowed)
    if unknown:
        raise HttpError(422, "validation_error", f"unknown parameter {unknown[0]!r}",
                        {name: "unknown parameter" for name in unknown})
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise HttpError(422, "validation_error", f"{repeated[0]} given twice",
                        {name: "given more than once" for name in repeated})
    empty = sorted(name for name, values in parsed.items() if values[0] == "")
    if empty:  # an empty value is no value: leave the parameter out instead
        raise HttpError(422, "validation_error", f"{empty[0]}: empty",
                        {name: "must not be empty (leave it out)" for name in empty})
    return {name: values[0] for name, values in parsed.items()}


def _time(params: dict[str, str], name: str) -> datetime | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        # a "+" of an offset arrives as a space when the client did not encode it
        moment = datetime.fromisoformat(text.strip().replace(" ", "+")) \
            if text.strip().isprintable() else None  # CPython's parser stops at a NUL
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise HttpError(422, "validation_error",
                        f"{name}: an ISO 8601 time with a time zone, e.g. 2026-01-31T00:00:00Z",
                        {name: "not an ISO 8601 time with a time zone"})
    try:
        return check_time(name, moment)
    except FeedbackValidationError as error:
        raise _invalid(error) from None


def _filter(params: dict[str, str], name: str) -> str | None:
    """A correlation filter's value; one that no stored item can have is a 422."""
    value = params.get(name)
    problem = key_problem(value) if value is not None else None
    if problem is not None:
        raise HttpError(422, "validation_error", f"{name}: {problem}", {name: problem})
    return value


def _cursor(params: dict[str, str]) -> str | None:
    cursor = params.get("cursor") or None
    if cursor is not None:
        try:
            decode_cursor(cursor)  # the store decodes it again: this refuses it before
        except FeedbackValidationError as error:
            raise _invalid(error) from None
    return cursor


def _flag(params: dict[str, str], name: str) -> bool:
    text = params.get(name, "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise HttpError(422, "validation_error", f"{name}: true or false", {name: "not a boolean"})
    return text in ("true", "1")


def _invalid(error: FeedbackValidationError) -> HttpError:
    return HttpError.from_feedback_error(422, error)


# GET /stats, /stats/timeseries


async def _stats(kit: FeedbackKit, scope: Mapping[str, Any], series: bool) -> Reply:
    await require_admin(kit, scope)
    params = _params(scope, _STATS_PARAMS | ({"interval"} if series else set()))
    filters = {key: params.get(key) for key in ("model", "provider", "intent", "project",
                                                "endpoint", "request_id", "otel_trace_id")}
    common: dict[str, Any] = {
        "window": params.get("window"), "since": _time(params, "since"),
        "until": _time(params, "until"), "by": params.get("by") or None,
        "unique": _flag(params, "unique"), **filters,
    }
    if common["window"] is None:
        del common["window"]  # the default window
    try:
        if series:
            interval = params.get("interval", "day")
            report = await feedback_timeseries(kit.store, interval=interval,  # type: ignore[arg-type]
                                               **common)
        else:
            report = await feedback_stats(kit.store, **common)
    except FeedbackValidationError as error:
        raise _invalid(error) from None
    data = report.to_dict()
    if "window" in params:
        data["window"] = params["window"]
    return json_reply(200, data)


# GET /


async def _list(kit: FeedbackKit, scope: Mapping[str, Any]) -> Reply:
    await require_admin(kit, scope)
    params = _params(scope, _LIST_PARAMS)
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        limit = -1
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise HttpError(422, "validation_error", f"limit: 1 to {LIST_LIMIT_MAX}",
                        {"limit": f"an integer from 1 to {LIST_LIMIT_MAX}"})
    try:
        page = await kit.store.query(
            type=params.get("type") or None, model=_filter(params, "model"),
            session_id=_filter(params, "session"), user_id=_filter(params, "user"),
            trace_id=_filter(params, "trace"), request_id=_filter(params, "request_id"),
            otel_trace_id=_filter(params, "otel_trace_id"), since=_time(params, "since"),
            until=_time(params, "until"), limit=limit, cursor=_cursor(params),
        )
    except FeedbackValidationError as error:
        raise _invalid(error) from None
    except ValueError as error:  # an unknown kind name
        raise HttpError(422, "validation_error", str(error), {"type": str(error)}) from None
    return json_reply(200, {"items": [item.to_dict() for item in page.items],
                            "next_cursor": page.next_cursor})


# /{id}


async def _load(kit: FeedbackKit, feedback_id: str) -> FeedbackItem:
    if not id_can_exist(feedback_id):  # unknown for certain: the store is not asked
        raise HttpError(404, "not_found", "no feedback with this id")
    item = await kit.store.get(feedback_id)
    if item is None:
        raise HttpError(404, "not_found", "no feedback with this id")
    return item


async def _load_for(kit: FeedbackKit, access: ItemAccess, feedback_id: str) -> FeedbackItem:
    """The item, when ``access`` may touch it; else the 404 of an unknown id, word for word."""
    item = await _load(kit, feedback_id)
    if not access.may_touch(item):
        raise HttpError(404, "not_found", "no feedback with this id")
    return item


async def _show(kit: FeedbackKit, scope: Mapping[str, Any], feedback_id: str) -> Reply:
    access = await item_access(kit, scope, header(scope, b"x-feedback-token"))
    item = await _load_for(kit, access, feedback_id)
    chain = await kit.store.history(feedback_id)
    last = chain[-1] if chain else item
    return json_reply(200, {
        "item": item.to_dict(),
        "history": [version.to_dict() for version in chain],
        "current_id": None if last.tombstone else last.id,
    })


def _saved(result: Any) -> FeedbackItem:
    match result:
        case Ok(item):
            saved: FeedbackItem = item
            return saved
        case Err(error):
            raise _save_error(error)
    raise AssertionError("unreachable")  # pragma: no cover


def _save_error(error: FeedbackError) -> HttpError:
    if isinstance(error, FeedbackValidationError):
        if "supersedes" in error.fields:
            return HttpError(409, "conflict", "the item changed meanwhile; read it and retry")
        return HttpError.from_feedback_error(422, error)
    return HttpError(503, error.code, error.message, headers=((b"retry-after", b"5"),))


async def _latest(kit: FeedbackKit, item: FeedbackItem) -> FeedbackItem:
    chain = await kit.store.history(item.id)
    return chain[-1] if chain else item


async def _edit(
    kit: FeedbackKit, scope: Mapping[str, Any], receive: Any, feedback_id: str, patch: bool
) -> Reply:
    require_json_content_type(scope)
    body = parse_json(await read_body(scope, receive, kit.config.max_payload_bytes))
    if not isinstance(body, dict):
        raise HttpError(422, "validation_error", "the body must be a JSON object",
                        {"body": "not an object"})
    unknown = sorted(set(body) - _EDIT_FIELDS)
    if unknown:
        raise HttpError(422, "validation_error", f"unknown field {unknown[0]!r}",
                        {name: "unknown field" for name in unknown})
    if not patch and "value" not in body:
        raise HttpError(422, "validation_error", "value: required", {"value": "required"})
    extra = body.get("metadata")
    if extra is None:  # as on POST: no metadata
        extra = {}
    if not isinstance(extra, dict):
        raise HttpError(422, "validation_error", "metadata: must be an object",
                        {"metadata": "must be an object"})
    try:
        check_metadata_keys(extra)
    except FeedbackValidationError as error:
        raise _invalid(error) from None
    token = header(scope, b"x-feedback-token") or body.get("token")
    access = await item_access(kit, scope, token if isinstance(token, str) else None)
    item = await _load_for(kit, access, feedback_id)
    latest = await _latest(kit, item)
    if latest.tombstone:
        raise HttpError(409, "retracted", "this feedback was retracted")
    role = access.role
    metadata = dict(latest.metadata) if patch else {
        key: value for key, value in latest.metadata.items() if key in ("submitter", "source")
    }
    metadata.update(extra)
    metadata["edited_by"] = role
    comment = body.get("comment", latest.comment if patch else None)
    metadata.pop("comment", None)
    value = body.get("value", latest.value)
    result = await kit.collector.collect(
        latest.feedback_type, value, dict(latest.context), metadata,
        comment=comment, supersedes=latest.id,
    )
    saved = _saved(result)
    return json_reply(200, {"status": "success", "feedback_id": saved.id,
                            "supersedes": latest.id})


async def _retract(kit: FeedbackKit, scope: Mapping[str, Any], feedback_id: str) -> Reply:
    access = await item_access(kit, scope, header(scope, b"x-feedback-token"))
    item = await _load_for(kit, access, feedback_id)
    role = access.role
    latest = await _latest(kit, item)
    if not latest.tombstone:  # retracting twice changes nothing
        metadata = {key: value for key, value in latest.metadata.items()
                    if key in ("submitter", "source")}
        metadata["edited_by"] = role
        _saved(await kit.collector.collect(
            latest.feedback_type, None, dict(latest.context), metadata,
            supersedes=latest.id, tombstone=True,
        ))
    return Reply(204, b"")


async def dispatch(kit: FeedbackKit, scope: Mapping[str, Any], receive: Any, path: str) -> Reply:
    """Answer one request for a path :func:`owns` (methods checked here; not OPTIONS)."""
    method = scope.get("method", "GET")
    allowed = allowed_methods(path)
    if method not in allowed:
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed here",
                        headers=((b"allow", ", ".join(allowed).encode()),))
    await kit.ensure_started()
    if path == "/":
        return await _list(kit, scope)
    if path.startswith("/stats"):
        return await _stats(kit, scope, series=path == "/stats/timeseries")
    feedback_id = path[1:]
    if method in ("GET", "HEAD"):
        return await _show(kit, scope, feedback_id)
    if method == "DELETE":
        return await _retract(kit, scope, feedback_id)
    return await _edit(kit, scope, receive, feedback_id, patch=method == "PATCH")
