"""The dashboard through the Django urls: staff see it, others are sent to sign in."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import AsyncClient, Client, override_settings

from feedback_asgi.dashboard import session
from feedback_asgi.integrations.django.conf import reset_kit

ADMIN_TOKEN = "django-dashboard-admin-token-0123456789"
HTML = {"HTTP_ACCEPT": "text/html"}
FORM = "application/x-www-form-urlencoded"  # what a browser sends for the sign-in form


def user(name: str, *, staff: bool) -> User:
    return User.objects.create_user(name, password="pw-0123456789", is_staff=staff)


@pytest.mark.django_db
def test_staff_see_the_dashboard_others_are_sent_to_sign_in() -> None:
    staff = Client()
    staff.force_login(user("ada", staff=True))
    page = staff.get("/feedback/dashboard", **HTML)
    assert page.status_code == 200
    assert page["Content-Type"] == "text/html; charset=utf-8"
    assert page["Content-Security-Policy"].startswith("default-src 'self'")
    assert "<h1>Feedback dashboard</h1>" in page.content.decode()
    assert "Sign out" not in page.content.decode()  # Django's own session, not the token's
    html = page.content.decode()
    assert '<form method="post" action="/feedback/export/finetune?since=' in html
    # the export form carries Django's CSRF token (masked), its cookie comes with the page
    assert re.search(r'class="export"><input type="hidden" name="csrfmiddlewaretoken" '
                     r'value="[A-Za-z0-9]{64}">', html)
    assert page.cookies[settings.CSRF_COOKIE_NAME].value

    anonymous = Client()
    browser = anonymous.get("/feedback/dashboard", **HTML)
    assert browser.status_code == 303
    assert browser["Location"] == "/feedback/dashboard/login"
    api = anonymous.get("/feedback/dashboard")
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "unauthorized"

    member = Client()
    member.force_login(user("bob", staff=False))
    assert member.get("/feedback/dashboard", **HTML).status_code == 303
    assert member.get("/feedback/dashboard").status_code == 403


@pytest.mark.django_db
def test_the_sign_in_page_links_to_the_site_login() -> None:
    with override_settings(LOGIN_URL="/accounts/login/"):
        page = Client().get("/feedback/dashboard/login", **HTML)
    assert page.status_code == 200
    assert 'href="/accounts/login/?next=%2Ffeedback%2Fdashboard"' in page.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_the_admin_token_signs_in_through_django_too() -> None:
    with override_settings(FEEDBACK_ASGI={**settings.FEEDBACK_ASGI, "admin_token": ADMIN_TOKEN}):
        reset_kit()
        client = AsyncClient(enforce_csrf_checks=True)
        origin = {"Origin": "http://testserver"}
        refused = await client.post("/feedback/dashboard/login", "token=wrong",
                                    content_type=FORM, headers=origin)
        assert refused.status_code == 401
        response = await client.post("/feedback/dashboard/login", f"token={ADMIN_TOKEN}",
                                     content_type=FORM, headers=origin)
        assert response.status_code == 303
        assert response["Location"] == "/feedback/dashboard"
        cookie = response.cookies[session.COOKIE_NAME]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
        assert cookie["path"] == "/feedback"
        assert not cookie["secure"]
        page = await client.get("/feedback/dashboard", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "Sign out" in page.content.decode()
        assert (await client.get("/feedback/stats")).status_code == 200
        secure = await AsyncClient().post("/feedback/dashboard/login", f"token={ADMIN_TOKEN}",
                                          content_type=FORM, secure=True,
                                          headers={"Origin": "https://testserver"})
        assert secure.cookies[session.COOKIE_NAME]["secure"]
