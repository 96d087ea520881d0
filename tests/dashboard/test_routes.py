"""The dashboard routes on every surface: rights, redirects, sign-in, cookie, sign-out."""

from __future__ import annotations

import html
import json
import re
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from feedback_asgi.core.records import FeedbackItem, utc_now
from feedback_asgi.dashboard import session
from feedback_asgi.dashboard.routes import CSP, LOGIN_ATTEMPTS_PER_MINUTE
from feedback_asgi.kit import FeedbackKit
from tests.endpoint.apps import SURFACES, Surface, build, client, error_of

ADMIN_TOKEN = "dashboard-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HTML = {"Accept": "text/html,application/xhtml+xml"}
SAME_ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def kit() -> FeedbackKit:
    return FeedbackKit.for_testing(admin_token=ADMIN_TOKEN)


@pytest.fixture(params=SURFACES)
def surface(request: pytest.FixtureRequest, kit: FeedbackKit) -> Surface:
    return build(request.param, kit)


async def sign_in(http: httpx.AsyncClient, token: str = ADMIN_TOKEN,
                  headers: dict[str, str] | None = None) -> httpx.Response:
    return await http.post("/feedback/dashboard/login", data={"token": token},
                           headers=SAME_ORIGIN if headers is None else headers)


def set_cookie_attributes(response: httpx.Response) -> dict[str, str]:
    (raw,) = response.headers.get_list("set-cookie")
    parts = [part.strip() for part in raw.split(";")]
    name, _, value = parts[0].partition("=")
    assert name == session.COOKIE_NAME
    attributes = {"value": value}
    for part in parts[1:]:
        key, _, text = part.partition("=")
        attributes[key.lower()] = text
    return attributes


async def test_without_rights_api_clients_get_401_and_browsers_the_sign_in_page(
    surface: Surface,
) -> None:
    async with client(surface.app) as http:
        api = await http.get("/feedback/dashboard")
        assert api.status_code == 401
        assert error_of(api)["code"] == "unauthorized"
        wrong = await http.get("/feedback/dashboard", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        browser = await http.get("/feedback/dashboard", headers=HTML)
        assert browser.status_code == 303
        assert browser.headers["location"] == "/feedback/dashboard/login"
        login = await http.get(browser.headers["location"], headers=HTML)
    assert login.status_code == 200
    assert login.headers["content-type"] == "text/html; charset=utf-8"
    assert login.headers["content-security-policy"] == CSP.decode()
    assert 'name="token"' in login.text
    assert 'type="password"' in login.text
    assert "<script" not in login.text


async def test_bearer_sees_the_dashboard(surface: Surface) -> None:
    async with client(surface.app) as http:
        page = await http.get("/feedback/dashboard", headers=BEARER)
        head = await http.head("/feedback/dashboard", headers=BEARER)
        css = await http.get("/feedback/dashboard/dashboard.css")
        icon = await http.get("/feedback/dashboard/icon.svg")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert int(page.headers["content-length"]) == len(page.content)
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["content-security-policy"] == CSP.decode()
    assert page.headers["x-frame-options"] == "DENY"
    assert "<h1>Feedback dashboard</h1>" in page.text
    assert "<script" not in page.text
    assert " style=" not in page.text
    assert 'href="/feedback/dashboard/dashboard.css"' in page.text
    # the export: a same-origin form POST to the export route, from the window's start
    export = re.search(r'<form method="post" action="([^"]+)" class="export">', page.text)
    assert export is not None
    action = urlsplit(html.unescape(export.group(1)))
    assert action.path == "/feedback/export/finetune"
    since = datetime.fromisoformat(parse_qs(action.query)["since"][0])
    assert abs((utc_now() - since) - timedelta(days=7)) < timedelta(minutes=1)
    assert head.status_code == 200
    assert head.content == b""
    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert ".fbd" in css.text
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"


async def test_sign_in_sets_a_strict_cookie_that_opens_the_dashboard_and_the_read_routes(
    surface: Surface, kit: FeedbackKit
) -> None:
    async with client(surface.app) as http:
        refused = await sign_in(http, "not-the-token")
        assert refused.status_code == 401
        assert "That token is not valid." in refused.text
        assert "set-cookie" not in refused.headers
        response = await sign_in(http)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/feedback/dashboard"
        cookie = set_cookie_attributes(response)
        assert {"httponly", "samesite", "path", "max-age", "expires"} <= set(cookie)
        assert cookie["samesite"] == "Strict"
        assert cookie["path"] == "/feedback"
        assert "secure" not in cookie  # plain http here; https is tested below
        assert int(cookie["max-age"]) == session.SESSION_TTL_SECONDS
        assert session.verify_cookie(kit.config, cookie["value"])
        jar = {"Cookie": f"{session.COOKIE_NAME}={cookie['value']}"}
        page = await http.get("/feedback/dashboard", headers={**HTML, **jar})
        assert page.status_code == 200
        assert "Sign out" in page.text
        # the read/admin JSON routes accept the cookie too (the page's export link needs it)
        stats = await http.get("/feedback/stats", headers=jar)
        assert stats.status_code == 200, stats.text
        again = await http.get("/feedback/dashboard/login", headers={**HTML, **jar})
        assert again.status_code == 303
        assert again.headers["location"] == "/feedback/dashboard"
        # a write with the cookie from another origin is refused; from the page it passes
        item = FeedbackItem("thumbs", 1, {"trace_id": "t-1"})
        assert (await kit.store.save(item)).is_ok()
        foreign = await http.delete(f"/feedback/{item.id}",
                                    headers={**jar, "Origin": "https://evil.test"})
        assert foreign.status_code == 401
        own = await http.delete(f"/feedback/{item.id}", headers={**jar, **SAME_ORIGIN})
        assert own.status_code == 204


async def test_secure_flag_over_https(kit: FeedbackKit) -> None:
    app = build("endpoint", kit).app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        response = await http.post("/feedback/dashboard/login", data={"token": ADMIN_TOKEN},
                                   headers={"Origin": "https://testserver"})
    assert response.status_code == 303
    assert "secure" in set_cookie_attributes(response)


async def test_tampered_and_expired_cookies_are_refused(surface: Surface, kit: FeedbackKit) -> None:
    good = session.issue_cookie(kit.config)
    expired = session.issue_cookie(kit.config, now=time.time() - session.SESSION_TTL_SECONDS - 1)
    version, expires, nonce, signature = good.split(".")
    forged = [
        f"{version}.{int(expires) + 1}.{nonce}.{signature}",
        f"{version}.{expires}.{nonce}.{'0' * len(signature)}",
        expired,
        kit.signer.sign("dashboard", "admin"),
        "",
    ]
    async with client(surface.app) as http:
        for value in forged:
            jar = {"Cookie": f"{session.COOKIE_NAME}={value}"}
            page = await http.get("/feedback/dashboard", headers={**HTML, **jar})
            assert page.status_code == 303, value
            assert (await http.get("/feedback/stats", headers=jar)).status_code == 401
        ok = await http.get("/feedback/dashboard",
                            headers={**HTML, "Cookie": f"{session.COOKIE_NAME}={good}"})
        assert ok.status_code == 200


async def test_sign_in_from_another_origin_is_refused(surface: Surface) -> None:
    async with client(surface.app) as http:
        cross = await sign_in(http, headers={"Origin": "https://evil.test"})
        fetch_site = await sign_in(http, headers={"Sec-Fetch-Site": "cross-site"})
        no_origin = await sign_in(http, headers={})
    assert cross.status_code == 403
    assert "set-cookie" not in cross.headers
    assert fetch_site.status_code == 403
    assert "set-cookie" not in fetch_site.headers
    assert no_origin.status_code == 303  # a client that sends no Origin (curl) may sign in


async def test_sign_in_attempts_are_rate_limited(kit: FeedbackKit) -> None:
    async with client(build("endpoint", kit).app) as http:
        statuses = [(await sign_in(http, "wrong")).status_code
                    for _ in range(LOGIN_ATTEMPTS_PER_MINUTE)]
        limited = await sign_in(http)  # even the right token waits now
    assert statuses == [401] * LOGIN_ATTEMPTS_PER_MINUTE
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "set-cookie" not in limited.headers


async def test_sign_out_clears_the_cookie(surface: Surface) -> None:
    async with client(surface.app) as http:
        response = await http.post("/feedback/dashboard/logout", headers=SAME_ORIGIN)
        foreign = await http.post("/feedback/dashboard/logout",
                                  headers={"Origin": "https://evil.test"})
    assert response.status_code == 303
    assert response.headers["location"] == "/feedback/dashboard/login"
    cookie = set_cookie_attributes(response)
    assert cookie["value"] == ""
    assert cookie["max-age"] == "0"
    assert foreign.status_code == 403


async def test_without_an_admin_token_there_is_no_sign_in() -> None:
    kit = FeedbackKit.for_testing()
    async with client(build("endpoint", kit).app) as http:
        page = await http.get("/feedback/dashboard/login")
        posted = await sign_in(http, "")
    assert page.status_code == 200
    assert "FEEDBACK_ASGI_ADMIN_TOKEN" in page.text
    assert 'name="token"' not in page.text
    assert posted.status_code == 403
    assert "set-cookie" not in posted.headers


async def test_the_authorizer_grants_the_dashboard() -> None:
    def authorizer(scope: Any) -> bool:
        return dict(scope["headers"]).get(b"x-user") == b"analyst"

    base = FeedbackKit.for_testing()
    kit = FeedbackKit(base.config, store=base.store, authorizer=authorizer)
    async with client(build("middleware", kit).app) as http:
        granted = await http.get("/feedback/dashboard", headers={**HTML, "X-User": "analyst"})
        denied = await http.get("/feedback/dashboard", headers={**HTML, "X-User": "guest"})
    assert granted.status_code == 200
    assert denied.status_code == 303


@pytest.mark.parametrize("query", ["window=1y", "window=7d&window=30d", "window="])
async def test_an_unknown_window_is_a_422(kit: FeedbackKit, query: str) -> None:
    async with client(build("endpoint", kit).app) as http:
        response = await http.get(f"/feedback/dashboard?{query}", headers=BEARER)
    assert response.status_code == 422
    assert error_of(response)["fields"] == {"window": "one of 24h, 7d, 30d, 90d"}


@pytest.mark.parametrize("window", ["24h", "7d", "30d", "90d"])
async def test_each_window_is_marked_current(kit: FeedbackKit, window: str) -> None:
    async with client(build("endpoint", kit).app) as http:
        response = await http.get(f"/feedback/dashboard?window={window}", headers=BEARER)
    assert response.status_code == 200
    assert f'<a href="/feedback/dashboard?window={window}" aria-current="page">' in response.text
    assert response.text.count('aria-current="page"') == 1


async def test_methods(kit: FeedbackKit) -> None:
    async with client(build("endpoint", kit).app) as http:
        put = await http.put("/feedback/dashboard", headers=BEARER)
        get_logout = await http.get("/feedback/dashboard/logout")
        options = await http.options("/feedback/dashboard/login")
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, HEAD, OPTIONS"
    assert get_logout.status_code == 405
    assert options.status_code == 204
    assert "POST" in options.headers["allow"]


async def test_the_export_form_downloads_ndjson_with_the_sign_in_cookie(
    surface: Surface, kit: FeedbackKit
) -> None:
    context = {"trace_id": "t-export", "input": "the question", "output": "the answer"}
    assert (await kit.store.save(FeedbackItem("thumbs", -1, context))).is_ok()
    async with client(surface.app) as http:
        cookie = set_cookie_attributes(await sign_in(http))
        http.cookies.clear()  # sent by hand below, and left out where it should be
        page = await http.get("/feedback/dashboard",
                              headers={"Cookie": f"{session.COOKIE_NAME}={cookie['value']}"})
        export = re.search(r'<form method="post" action="([^"]+)" class="export">', page.text)
        assert export is not None
        # what the browser sends for the form: no fields, its own origin, the cookie
        form = {"Content-Type": "application/x-www-form-urlencoded", **SAME_ORIGIN,
                "Cookie": f"{session.COOKIE_NAME}={cookie['value']}"}
        action = html.unescape(export.group(1))
        response = await http.post(action, content=b"", headers=form)
        anonymous = await http.post(action, content=b"",
                                    headers={k: v for k, v in form.items() if k != "Cookie"})
        foreign = await http.post(action, content=b"", headers={**form, "Origin": "https://evil.test"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert "attachment" in response.headers["content-disposition"]
    records = [json.loads(line) for line in response.text.splitlines()]
    assert [r["messages"][-1]["content"] for r in records] == ["the answer"]
    assert anonymous.status_code == 401
    assert foreign.status_code == 401
