"""The dashboard in a real browser: sign in with the admin token, see the feedback a widget
just sent (escaped, never run), download the export; Django staff see it through their login and download it too."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from example_apps.responder import local_model
from feedback_asgi.core.records import FeedbackItem, utc_now
from tests.browser.chat import Answer, ask, open_chat
from tests.browser.conftest import BrowserPage, store_for
from tests.browser.servers import ADMIN_TOKEN, ServedApp
from tests.browser.test_widget import save_screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAYLOAD = '<script>alert("xss-script")</script><img src=x onerror="alert(\'xss-img\')">'
"""A comment that would run, twice, if the dashboard put it into the page as HTML."""


async def thumbs_down(answer: Answer, comment: str) -> None:
    """Vote the answer down with ``comment`` through the widget; wait until it is sent."""
    await answer.widget.get_by_role("button", name="Thumbs down").click()
    await answer.widget.get_by_label("What was wrong? (optional)").fill(comment)
    await answer.widget.get_by_role("button", name="Send feedback").click()
    await answer.widget.get_by_role("status").filter(has_text="Thanks").wait_for()


async def sign_in(page: Any, app: ServedApp, token: str = ADMIN_TOKEN) -> None:
    """Open the dashboard; it sends us to the sign-in page, where the token goes in."""
    await page.goto(app.url + "/feedback/dashboard")
    assert page.url == app.url + "/feedback/dashboard/login"
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


def negative_card(page: Any, message: str) -> Any:
    """The card of the latest negative feedback whose input is ``message``."""
    return page.locator("li.negative").filter(
        has=page.locator(".input pre", has_text=message))


async def test_sign_in_see_the_new_negative_feedback_as_text_and_download_the_export(
    served: dict[str, ServedApp], stores: dict[str, Any], browser_page: BrowserPage,
    tmp_path: Path,
) -> None:
    app, page = served["fastapi"], browser_page.page
    await open_chat(page, app)
    message = "which planet is the largest"
    answer = await ask(page, message)
    await thumbs_down(answer, PAYLOAD)

    await sign_in(page, app, "not the admin token")
    assert await page.get_by_role("alert").inner_text() == "That token is not valid."
    browser_page.expected_console_errors = 1  # Chromium logs the 401 of the refused sign-in
    await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(app.url + "/feedback/dashboard")
    cookie = next(c for c in await browser_page.context.cookies()
                  if c["name"] == "feedback_asgi_admin")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/feedback")

    card = negative_card(page, message)
    await card.wait_for()
    assert await card.locator(".badge").inner_text() == "Thumbs down"
    # the comment is shown as text next to the input and output it rates
    assert await card.locator(".comment").text_content() == "Comment: " + PAYLOAD
    assert await card.locator(".input pre").inner_text() == message
    assert await card.locator(".output pre").inner_text() == local_model(message) == answer.text
    # ...and nothing of it ran or became an element (dialogs and CSP reports fail the fixture)
    assert await page.locator("main img").count() == 0
    assert await page.evaluate("document.scripts.length") == 0
    total = int(await page.locator('dd[data-figure="total_count"]').inner_text())
    down = int(await page.locator('dd[data-figure="thumbs_down"]').inner_text())
    assert total >= 1
    assert down >= 1

    # the export: a form POST from this page, the sign-in cookie is its credential
    async with page.expect_download() as pending:
        await page.get_by_role("button", name="Download the fine-tuning export").click()
    download = await pending.value
    assert download.suggested_filename.endswith(".jsonl")
    saved = await download.path()
    lines = (await asyncio.to_thread(Path(saved).read_text, "utf-8")).splitlines()
    records = [json.loads(line) for line in lines]
    assert records
    rated = [r for r in records if r["messages"][-1]["content"] == answer.text]
    assert len(rated) == 1
    assert {"role": "user", "content": message} in rated[0]["messages"]
    assert rated[0]["weight"] < 1  # a thumbs-down: a down-weighted example

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(app.url + "/feedback/dashboard/login")
    await page.goto(app.url + "/feedback/dashboard")
    assert page.url == app.url + "/feedback/dashboard/login"  # signed out: sent back
    assert "feedback_asgi_admin" not in {c["name"] for c in await browser_page.context.cookies()}


async def test_django_staff_see_the_dashboard(
    served: dict[str, ServedApp], browser_page: BrowserPage
) -> None:
    app, page = served["django"], browser_page.page
    await open_chat(page, app)  # signs in as a superuser through Django's login form
    message = "staff should read this complaint"
    answer = await ask(page, message)
    await thumbs_down(answer, "Not what I asked.")
    response = await page.goto(app.url + "/feedback/dashboard")
    assert response.status == 200
    assert page.url == app.url + "/feedback/dashboard"  # no token sign-in needed
    card = negative_card(page, message)
    assert await card.locator(".comment").text_content() == "Comment: Not what I asked."
    assert await card.locator(".output pre").inner_text() == answer.text
    assert await page.get_by_role("button", name="Sign out").count() == 0  # Django's session
    # the export button: a form POST carrying Django's CSRF token, staff rights by the session
    async with page.expect_download() as pending:
        await page.get_by_role("button", name="Download the fine-tuning export").click()
    download = await pending.value
    assert download.suggested_filename == "feedback-finetune.jsonl"
    saved = await download.path()
    lines = (await asyncio.to_thread(Path(saved).read_text, "utf-8")).splitlines()
    rated = [r for r in map(json.loads, lines) if r["messages"][-1]["content"] == answer.text]
    assert len(rated) == 1
    assert {"role": "user", "content": message} in rated[0]["messages"]
    assert rated[0]["weight"] < 1  # the thumbs-down just sent


SAMPLE = [  # question, answer, what an unhappy user might say
    ("How do I reset my password?", "Open Settings, then Security, and choose Reset password.",
     "Wrong menu: it is under Account now."),
    ("Can I export my invoices as CSV?", "Yes: Billing > Invoices > Export, then pick CSV.",
     "There is no CSV option on my plan."),
    ("What is your refund policy?", "Refunds are possible within 30 days of purchase.",
     "Too vague: what about annual plans?"),
    ("Do you support single sign-on?", "SSO with SAML is available on the Business plan.",
     ""),
]


async def test_screenshot_of_a_week_of_feedback(
    served: dict[str, ServedApp], stores: dict[str, Any], browser_page: BrowserPage,
    tmp_path: Path,
) -> None:
    app, page = served["starlette"], browser_page.page
    rng = random.Random(8)
    now = utc_now()
    models = {"gpt-4o-mini": 0.82, "llama-3.1-8b": 0.64, "mistral-small": 0.73}
    items = []
    for number in range(420):
        model = rng.choice(list(models))
        question, reply, complaint = rng.choice(SAMPLE)
        context = {"trace_id": f"shot-{number}", "model": model, "input": question,
                   "output": reply}
        when = now - timedelta(hours=rng.uniform(0.2, 24 * 7 - 1))
        kind = rng.choice(["thumbs"] * 6 + ["rating"] * 2 + ["correction", "text"])
        metadata = {"comment": complaint} if complaint and rng.random() < 0.6 else {}
        value: Any
        if kind == "thumbs":
            value = 1 if rng.random() < models[model] else -1
        elif kind == "rating":
            value = rng.choice([1, 2, 3, 4, 4, 5, 5])
        elif kind == "correction":
            value = {"original": reply, "corrected": reply.replace(".", ", from the Account page.")}
        else:
            value = "Helpful, thanks."
        items.append(FeedbackItem(kind, value, context, metadata, created_at=when))
    assert (await store_for(stores, app).save_many(items)).is_ok()

    await page.set_viewport_size({"width": 1200, "height": 1240})
    await sign_in(page, app)
    await page.wait_for_url(app.url + "/feedback/dashboard")
    await page.locator("li.negative").first.wait_for()
    assert await page.locator("svg.line-chart polyline").count() == len(models)
    assert await page.locator("svg.bar-chart rect").count() == 4
    shot = await page.screenshot()
    save_screenshot(shot, "dashboard.png", tmp_path)
