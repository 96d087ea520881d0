"""The dashboard routes below the feedback path, served by the neutral endpoint.

* ``GET /dashboard?window=24h|7d|30d|90d``: the page (read/admin rights);
* ``GET /dashboard/login``, ``POST /dashboard/login`` (form field ``token``): sign in with
  ``config.admin_token``; sets the cookie of :mod:`feedback_asgi.dashboard.session`;
* ``POST /dashboard/logout``: revokes it on the server (every worker with Redis) and clears
  it; 503 (cookie kept, to try again) when the sign-out cannot be recorded;
* ``GET /dashboard/dashboard.css``, ``GET /dashboard/icon.svg``: the page's files.

Read/admin rights are :func:`feedback_asgi.web.access.is_admin`'s: the kit's authorizer, the
admin bearer, the sign-in cookie, or a Django staff user. Without them a browser
(``Accept: text/html``) is sent to the sign-in page (303); any other client gets the JSON
401 (403 for a signed-in user without rights) of the read/admin routes.

Sign-in posts are limited per client address (``scope["client"]``) by a
:class:`~feedback_asgi.web.rate_limit.RateLimiter`: in Redis with ``redis_url`` (one limit
across workers), in memory otherwise or while Redis is down.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from feedback_asgi.dashboard import session
from feedback_asgi.dashboard.data import WINDOWS, load_dashboard
from feedback_asgi.dashboard.render import Links, dashboard_page, login_page
from feedback_asgi.dashboard.shared import shared_buckets
from feedback_asgi.web.access import require_admin
from feedback_asgi.web.assets import asset_reply
from feedback_asgi.web.rate_limit import RateLimiter
from feedback_asgi.web.wire import HttpError, Reply, header, read_body

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = [
    "CSP",
    "DASHBOARD_PATH",
    "EXPORT_SCOPE_KEY",
    "FORM_FIELDS_SCOPE_KEY",
    "LOGIN_URL_SCOPE_KEY",
    "HtmlReply",
    "dispatch",
    "owns",
]

logger = logging.getLogger("feedback_asgi")

DASHBOARD_PATH = "/dashboard"
LOGIN_URL_SCOPE_KEY = "feedback_asgi.login_url"
"""Scope key with the host app's sign-in URL, linked from the token sign-in page."""
EXPORT_SCOPE_KEY = "feedback_asgi.export"
"""Scope key an adapter sets to ``False`` when it does not serve the export route (no button)."""
FORM_FIELDS_SCOPE_KEY = "feedback_asgi.form_fields"
"""Scope key with ``(name, value)`` pairs the page's POST forms carry as hidden fields
(Django: its CSRF token, ``csrfmiddlewaretoken``)."""
CSP = (b"default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
       b"form-action 'self'; frame-ancestors 'none'")
LOGIN_ATTEMPTS_PER_MINUTE = 10
"""Sign-in posts per client address and minute (a burst of as many), then 429; with
``redis_url``, counted across every worker."""
_FORM_LIMIT = 4096
_ROUTES: dict[str, tuple[str, ...]] = {
    DASHBOARD_PATH: ("GET", "HEAD", "OPTIONS"),
    f"{DASHBOARD_PATH}/login": ("GET", "HEAD", "POST", "OPTIONS"),
    f"{DASHBOARD_PATH}/logout": ("POST", "OPTIONS"),
    f"{DASHBOARD_PATH}/dashboard.css": ("GET", "HEAD", "OPTIONS"),
    f"{DASHBOARD_PATH}/icon.svg": ("GET", "HEAD", "OPTIONS"),
}
_SAFE_BASE = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,=:@%-]+)*$")
_limiters: weakref.WeakKeyDictionary[Any, RateLimiter] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class HtmlReply(Reply):
    """A :class:`Reply` carrying an HTML page, with the page's security headers."""

    def with_headers(self, extra: Iterable[tuple[bytes, bytes]]) -> HtmlReply:
        """A copy with ``extra`` headers appended."""
        return HtmlReply(self.status, self.body, (*self.headers, *extra))

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """HTML type and length, no caching, a strict CSP, then the extras."""
        return [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(self.body)).encode()),
            (b"cache-control", b"no-store"),
            (b"content-security-policy", CSP),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            *self.headers,
        ]


def owns(path: str) -> bool:
    """Whether ``path`` (below the feedback path) is a dashboard route."""
    return path in _ROUTES


def _page(status: int, html: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> HtmlReply:
    return HtmlReply(status, html.encode("utf-8"), tuple(headers))


def _redirect(location: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> HtmlReply:
    return _page(303, "", ((b"location", location.encode("latin-1")), *headers))


def _links(kit: FeedbackKit, scope: Mapping[str, Any], path: str) -> Links:
    full = str(scope.get("path", "")).rstrip("/")
    base = full[: -len(path)] if full.endswith(path) else kit.config.path
    if not _SAFE_BASE.match(base):
        base = kit.config.path.rstrip("/")
    login_url = scope.get(LOGIN_URL_SCOPE_KEY)
    export = None if scope.get(EXPORT_SCOPE_KEY) is False else f"{base}/export/finetune"
    fields = scope.get(FORM_FIELDS_SCOPE_KEY) or ()
    return Links(base, export=export,
                 login_url=login_url if isinstance(login_url, str) else None,
                 form_fields=tuple((str(name), str(value)) for name, value in fields))


def _cookie_path(links: Links) -> str:
    return links.base or "/"


def _wants_html(scope: Mapping[str, Any]) -> bool:
    return "text/html" in (header(scope, b"accept") or "").lower()


def _window(scope: Mapping[str, Any]) -> str:
    params = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"),
                      keep_blank_values=True)
    values = params.get("window", ["7d"])
    if len(values) != 1 or values[0] not in WINDOWS:
        raise HttpError(422, "validation_error", f"window: one of {', '.join(WINDOWS)}",
                        {"window": f"one of {', '.join(WINDOWS)}"})
    return values[0]


async def _dashboard(kit: FeedbackKit, scope: Mapping[str, Any], path: str) -> Reply:
    links = _links(kit, scope, path)
    try:
        await require_admin(kit, scope)
    except HttpError:
        if _wants_html(scope):
            return _redirect(links.asset("login"))
        raise
    window = _window(scope)
    data = await load_dashboard(kit.store, kit.config, window)
    signed_in = await session.cookie_valid(kit, session.read_cookie(scope))
    return _page(200, dashboard_page(data, links, signed_in=signed_in))


def _limiter(kit: FeedbackKit) -> RateLimiter:
    limiter = _limiters.get(kit)
    if limiter is None:
        limiter = _limiters[kit] = RateLimiter(LOGIN_ATTEMPTS_PER_MINUTE,
                                               remote=shared_buckets(kit))
    return limiter


def _client(scope: Mapping[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _login_bucket(scope: Mapping[str, Any]) -> str:
    # its own bucket name: the feedback posts' limiter keys the same addresses as "ip:..."
    return "dashboard-login:" + _client(scope)


async def _form_token(scope: Mapping[str, Any], receive: Any) -> str | None:
    body = await read_body(scope, receive, _FORM_LIMIT)
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get("token", [])
    return values[0] if len(values) == 1 else None


async def _login(kit: FeedbackKit, scope: Mapping[str, Any], receive: Any, path: str) -> Reply:
    links = _links(kit, scope, path)
    admin = kit.config.admin_token
    if scope.get("method") in ("GET", "HEAD"):
        if await session.cookie_valid(kit, session.read_cookie(scope)):
            return _redirect(links.dashboard)
        return _page(200, login_page(links, enabled=admin is not None))
    if not session.same_origin(scope):
        return _page(403, login_page(links, error="This form must be sent from its own page."))
    if admin is None:
        return _page(403, login_page(links, enabled=False))
    decision = await _limiter(kit).hit(_login_bucket(scope))
    if not decision.allowed:
        seconds = max(1, math.ceil(decision.retry_after))
        return _page(429, login_page(links, error=f"Too many attempts: wait {seconds} s."),
                     ((b"retry-after", str(seconds).encode()),))
    token = await _form_token(scope, receive)
    if token is None or not hmac.compare_digest(
        token.encode("utf-8", "replace"), admin.get_secret_value().encode()
    ):
        logger.warning("feedback-asgi: dashboard sign-in refused for %s", _client(scope))
        return _page(401, login_page(links, error="That token is not valid."))
    value = session.issue_cookie(kit.config)
    return _redirect(links.dashboard, (session.set_cookie(scope, value, _cookie_path(links)),))


async def _logout(kit: FeedbackKit, scope: Mapping[str, Any], links: Links) -> Reply:
    if not session.same_origin(scope):
        raise HttpError(403, "forbidden", "sign out from the dashboard page")
    if not await session.revoke_cookie(kit, session.read_cookie(scope)):
        # the cookie stays set: signing out again once Redis answers revokes it everywhere
        raise HttpError(503, "storage_unavailable", "the sign-out could not be recorded; "
                        "try again", headers=((b"retry-after", b"5"),))
    return _redirect(links.asset("login"), (session.clear_cookie(scope, _cookie_path(links)),))


async def dispatch(kit: FeedbackKit, scope: Mapping[str, Any], receive: Any, path: str) -> Reply:
    """Answer one request for a path :func:`owns`."""
    methods = _ROUTES[path]
    method = scope.get("method", "GET")
    allow = ((b"allow", ", ".join(methods).encode()),)
    if method not in methods:
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed here", headers=allow)
    if method == "OPTIONS":
        return Reply(204, b"", allow)
    if path.endswith((".css", ".svg")):
        return asset_reply(scope, path)
    if path == f"{DASHBOARD_PATH}/logout":
        return await _logout(kit, scope, _links(kit, scope, path))
    await kit.ensure_started()
    if path == DASHBOARD_PATH:
        return await _dashboard(kit, scope, path)
    return await _login(kit, scope, receive, path)
