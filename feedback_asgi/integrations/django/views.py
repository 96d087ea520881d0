"""The feedback routes as plain Django views over the framework-neutral endpoint.

Each view translates the ``HttpRequest`` into what :func:`feedback_asgi.web.endpoint.respond`
reads (method, headers, the session) and its :class:`~feedback_asgi.web.wire.Reply` back into an
``HttpResponse``, so the JSON, status codes and errors are the ASGI endpoint's, byte for byte.
The POST is ``csrf_exempt``: it is authenticated by the feedback token, not by a cookie.
Read and admin views (the later read/admin routes) go behind :func:`reader_required`.
The dashboard page gets Django's CSRF token for its forms (``csrfmiddlewaretoken``), so its
export button passes the check that staff rights need on a POST (:func:`grant_rights`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch
from django.views.decorators.csrf import csrf_exempt

from feedback_asgi.capture.exchange import session_digest
from feedback_asgi.dashboard.routes import FORM_FIELDS_SCOPE_KEY, LOGIN_URL_SCOPE_KEY
from feedback_asgi.integrations.django.conf import get_kit
from feedback_asgi.web.access import AUTHENTICATED_SCOPE_KEY, READER_SCOPE_KEY
from feedback_asgi.web.endpoint import respond
from feedback_asgi.web.wire import HttpError, Reply

__all__ = [
    "CSRF_FIELD",
    "READ_PERMISSION",
    "body_receiver",
    "can_read",
    "feedback_view",
    "grant_rights",
    "reader_required",
    "request_scope",
    "to_response",
]

READ_PERMISSION = "feedback_asgi.view_aifeedback"
"""The permission that grants the read routes to users who are not staff."""
CSRF_FIELD = "csrfmiddlewaretoken"
"""The form field Django's CSRF check reads (the dashboard's forms carry it)."""

View = Callable[..., Awaitable[HttpResponse]]


def request_scope(request: HttpRequest, session_id: str | None = None) -> dict[str, Any]:
    """The ASGI-like scope the endpoint reads for ``request`` (no rights in it yet)."""
    headers = [
        (name.lower().encode("latin-1", "replace"), value.encode("latin-1", "replace"))
        for name, value in request.headers.items()
    ]
    scope: dict[str, Any] = {"type": "http", "method": request.method, "path": request.path,
                             "scheme": request.scheme,
                             "query_string": request.META.get("QUERY_STRING", "").encode(
                                 "latin-1", "replace"),
                             "headers": headers,
                             "client": (request.META.get("REMOTE_ADDR") or "", 0)}
    if session_id is not None:
        scope["session"] = {"session_id": session_id}
    return scope


def body_receiver(request: HttpRequest, limit: int) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` giving the request body (at most ``limit + 1`` bytes), or 413."""
    async def receive() -> dict[str, Any]:
        try:
            # bounded: one byte past the limit is enough for the endpoint to answer 413
            body = request.read(limit + 1)
        except OSError:
            return {"type": "http.disconnect"}
        except Exception:  # RequestDataTooBig, RawPostDataException
            raise HttpError(413, "payload_too_large",
                            f"request body is larger than {limit} bytes") from None
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _user(request: HttpRequest) -> Any:
    auser = getattr(request, "auser", None)
    return await auser() if auser is not None else getattr(request, "user", None)


async def can_read(request: HttpRequest) -> bool:
    """Whether the user may use the read/admin routes: staff, or :data:`READ_PERMISSION`."""
    user = await _user(request)
    if user is None or not getattr(user, "is_active", False):
        return False
    if getattr(user, "is_staff", False):
        return True
    ahas_perm = getattr(user, "ahas_perm", None)
    return bool(await ahas_perm(READ_PERMISSION)) if ahas_perm is not None else False


def reader_required(view: View) -> View:
    """Allow ``view`` to staff (or :data:`READ_PERMISSION`) only; others get the JSON 401/403."""

    @wraps(view)
    async def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not await can_read(request):
            user = await _user(request)
            anonymous = user is None or not getattr(user, "is_authenticated", False)
            error = HttpError(401, "unauthorized", "log in as staff to read feedback") if anonymous \
                else HttpError(403, "forbidden", "staff only")
            return to_response(request, error.reply())
        return await view(request, *args, **kwargs)

    return guarded


def to_response(request: HttpRequest, reply: Reply) -> HttpResponse:
    """``reply`` as an ``HttpResponse`` (no body for ``HEAD`` or 204; cookies through Django)."""
    head = request.method == "HEAD" or reply.status == 204
    response = HttpResponse(b"" if head else reply.body, status=reply.status)
    if reply.status == 204:
        del response["Content-Type"]
    for name, value in reply.header_list():
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        if key.lower() == "content-length" and head:
            continue
        if key.lower() == "set-cookie":  # Django sends its cookies itself, one header each
            response.cookies.load(text)
            continue
        response[key] = f"{response[key]}, {text}" if key.lower() == "vary" and \
            response.has_header(key) else text
    return response


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    middleware = CsrfViewMiddleware(lambda _request: HttpResponse())
    response: HttpResponse | None = middleware.process_view(
        request, lambda _request: HttpResponse(), (), {})
    return response


async def _csrf_passes(request: HttpRequest) -> bool:
    """Staff rights ride on the session cookie: unsafe methods need Django's CSRF check."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    failure = await sync_to_async(_csrf_failure, thread_sensitive=True)(request)
    return failure is None


async def grant_rights(request: HttpRequest, scope: dict[str, Any]) -> None:
    """Set the scope flags :mod:`feedback_asgi.web.access` reads for the Django user.

    Staff (or :data:`READ_PERMISSION`) get :data:`~feedback_asgi.web.access.READER_SCOPE_KEY` when
    the request passes Django's CSRF check (always for safe methods); any other logged-in
    user gets :data:`~feedback_asgi.web.access.AUTHENTICATED_SCOPE_KEY` (answered 403, not 401).
    """
    if await can_read(request) and await _csrf_passes(request):
        scope[READER_SCOPE_KEY] = True
    else:
        user = await _user(request)
        scope[AUTHENTICATED_SCOPE_KEY] = bool(getattr(user, "is_authenticated", False))


@csrf_exempt
async def feedback_view(request: HttpRequest, route: str = "/", **kwargs: Any) -> HttpResponse:
    """Serve one feedback route (``"/"``, ``"/health"``, ``"/sessions/<id>"``...)."""
    kit = get_kit()
    session_id = None
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None) if session is not None else None
    if isinstance(key, str) and key:
        session_id = session_digest(key)
    wanted = kwargs.get("session_id")
    if wanted is not None:
        route = f"/sessions/{wanted}"
        if await can_read(request):
            session_id = wanted  # staff may list any session's feedback
    elif "rest" in kwargs:
        route = "/" + str(kwargs["rest"])
    elif "feedback_id" in kwargs:
        route = "/" + str(kwargs["feedback_id"])
    scope = request_scope(request, session_id)
    if route.startswith("/dashboard"):
        with suppress(NoReverseMatch):  # the dashboard's sign-in page links to the site login
            scope[LOGIN_URL_SCOPE_KEY] = resolve_url(settings.LOGIN_URL)
    if route == "/dashboard":
        # the page's POST forms (the export) carry the token; sync_to_async: CSRF_USE_SESSIONS
        token = await sync_to_async(get_token, thread_sensitive=True)(request)
        scope[FORM_FIELDS_SCOPE_KEY] = ((CSRF_FIELD, token),)
    await grant_rights(request, scope)
    reply = await respond(kit, scope, body_receiver(request, kit.config.max_payload_bytes), route)
    if reply is None:  # the client went away
        return HttpResponse(status=400)
    return to_response(request, reply)
