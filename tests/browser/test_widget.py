"""The widget's own behaviour in a real browser: stars, correction, the helpers, markup added
later, no double submission, error and retry, user text shown as text, and screenshots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from example_apps.responder import local_model
from tests.browser.chat import ask, open_chat
from tests.browser.conftest import SCREENSHOTS, BrowserPage, expected_session, store_for
from tests.browser.servers import ServedApp

pytestmark = pytest.mark.asyncio(loop_scope="session")


def feedback_posts(page: Any) -> list[Any]:
    """Every POST the page sends to the feedback endpoint, recorded as it happens."""
    posts: list[Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST"
            and r.url.rstrip("/").endswith("/feedback") else None)
    return posts


def save_screenshot(shot: bytes, name: str, tmp_path: Path) -> None:
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / name).write_bytes(shot)
    if SCREENSHOTS:
        os.makedirs(SCREENSHOTS, exist_ok=True)
        shutil.copy(tmp_path / name, Path(SCREENSHOTS) / name)


async def test_star_rating_and_correction(
    served: dict[str, ServedApp], stores: dict[str, Any], browser_page: BrowserPage,
    tmp_path: Path,
) -> None:
    app, page = served["starlette"], browser_page.page  # its page asks for stars
    await open_chat(page, app)
    message = "how many stars is this worth"
    answer = await ask(page, message)
    four = answer.widget.get_by_role("button", name="Rate 4 of 5 stars")
    await four.click()
    await answer.widget.get_by_role("status").filter(has_text="Thanks").wait_for()
    assert await four.get_attribute("aria-pressed") == "true"
    for other in (1, 2, 3, 5):
        star = answer.widget.get_by_role("button", name=f"Rate {other} of 5 stars")
        assert await star.get_attribute("aria-pressed") == "false"

    toggle = answer.widget.get_by_role("button", name="Suggest a correction")
    await toggle.click()
    assert await toggle.get_attribute("aria-expanded") == "true"
    box = answer.widget.get_by_label("Corrected answer")
    assert await box.input_value() == answer.text  # prefilled with the answer itself
    save_screenshot(await page.locator("article.turn").last.screenshot(), "widget-stars.png",
                    tmp_path)
    corrected = "It is worth four stars, read forwards."
    await box.fill(corrected)
    await answer.widget.get_by_role("button", name="Send correction").click()
    await box.wait_for(state="hidden")
    assert await answer.widget.get_by_role("status").inner_text() == (
        "Thanks, your feedback was sent.")

    store = store_for(stores, app)
    items = {i.feedback_type: i for i in await store.find_by_trace(answer.trace_id)}
    assert set(items) == {"rating", "correction"}
    assert items["rating"].value == 4.0
    assert items["correction"].value == {"original": local_model(message), "corrected": corrected}
    session = expected_session(app, await browser_page.context.cookies())
    for item in items.values():
        assert (item.context["input"], item.context["output"]) == (message, answer.text)
        assert item.context["session_id"] == session
    # the browser's session reads its own feedback back through the endpoint
    own = await page.evaluate(
        "async (s) => (await fetch('/feedback/sessions/' + s)).json()", session)
    assert {entry["id"] for entry in own} == {item.id for item in items.values()}


async def test_user_text_is_shown_as_text(
    served: dict[str, ServedApp], stores: dict[str, Any], browser_page: BrowserPage
) -> None:
    app, page = served["fastapi"], browser_page.page
    await open_chat(page, app)
    # the responder echoes the words back: the answer itself carries the markup
    message = "<b>bold</b> <img src=x onerror=alert(1)> <script>alert(2)</script>"
    answer = await ask(page, message)
    comment = '<script>alert("c")</script><img src=y onerror="window.__xss=1">'
    await answer.widget.get_by_role("button", name="Thumbs down").click()
    await answer.widget.get_by_label("What was wrong? (optional)").fill(comment)
    await answer.widget.get_by_role("button", name="Send feedback").click()
    await answer.widget.get_by_role("status").filter(has_text="Thanks").wait_for()
    await answer.widget.get_by_role("button", name="Suggest a correction").click()
    box = answer.widget.get_by_label("Corrected answer")
    assert await box.input_value() == local_model(message)  # the markup, as plain text
    assert "<img" in await answer.bot.locator(".answer").inner_text()
    # nothing became an element, nothing ran, no dialog opened (the fixture checks dialogs)
    assert await page.locator("main img, main script, main b").count() == 0
    assert await page.evaluate("window.__xss") is None
    item = next(i for i in await store_for(stores, app).find_by_trace(answer.trace_id)
                if i.feedback_type == "thumbs")
    assert item.comment == comment  # stored exactly as typed


async def test_helpers_markup_added_later_and_no_double_submission(
    served: dict[str, ServedApp], stores: dict[str, Any], browser_page: BrowserPage
) -> None:
    app, page = served["fastapi"], browser_page.page
    await open_chat(page, app)
    posts = feedback_posts(page)
    # fromResponse: headers of a JSON answer; then the body fallback (headers not exposed)
    traces = await page.evaluate("""async () => {
        const ask = (message) => fetch("/chat", {method: "POST",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({message})});
        const first = await ask("from the headers");
        const a = document.createElement("div");
        a.id = "by-headers";
        a.textContent = (await first.clone().json()).reply;
        document.querySelector("main").append(a);
        const fromHeaders = await FeedbackWidget.fromResponse(first, a);
        const second = await ask("from the body");
        const body = await second.json();
        const b = document.createElement("div");
        b.id = "by-body";
        document.querySelector("main").append(b);
        const bare = new Response(JSON.stringify(body), {headers: {}});
        const fromBody = await FeedbackWidget.fromResponse(bare, b);
        return [fromHeaders.traceId, fromBody.traceId, first.headers.get("X-Trace-Id"),
                body.trace_id];
    }""")
    assert traces[0] == traces[2]
    assert traces[1] == traces[3]
    # markup added later (as a server-rendered fragment would be): the observer attaches
    token = await page.locator("#by-body").get_attribute("data-feedback-token")
    await page.evaluate("""([trace, token]) => {
        const late = document.createElement("section");
        late.innerHTML = '<p id="late">An answer rendered later</p>';
        late.firstChild.dataset.feedbackTrace = trace;
        late.firstChild.dataset.feedbackToken = token;
        document.querySelector("main").append(late);
    }""", [traces[1], token])
    await page.locator("#late .fbw").wait_for()

    up = page.locator("#by-headers").get_by_role("button", name="Thumbs up")
    await up.dblclick()  # a double click sends one vote
    await page.locator("#by-headers").get_by_role("status").filter(has_text="Thanks").wait_for()
    await up.click()  # the same vote again: nothing to send
    await page.locator("#by-body").get_by_role("button", name="Thumbs up").click()
    await page.locator("#by-body").get_by_role("status").filter(has_text="Thanks").wait_for()
    assert len(posts) == 2
    keys = [(await p.all_headers()).get("idempotency-key") for p in posts]
    assert all(keys)
    assert keys[0] != keys[1]
    store = store_for(stores, app)
    for trace in traces[:2]:
        items = await store.find_by_trace(trace)
        assert [(i.feedback_type, i.value) for i in items] == [("thumbs", 1)]
    # the later element rates the same answer as #by-body: its vote is already counted
    assert await page.locator("#late .fbw").count() == 1


async def test_refused_submission_shows_the_error_and_retries_with_the_same_key(
    served: dict[str, ServedApp], stores: dict[str, Any], browser_page: BrowserPage
) -> None:
    app, page = served["fastapi"], browser_page.page
    await open_chat(page, app)
    answer = await ask(page, "one answer with a broken token")
    posts = feedback_posts(page)
    # the endpoint refuses the first attempt (as for an expired token)
    await page.route("**/feedback/", lambda route: route.fulfill(
        status=401, content_type="application/json",
        body='{"error": {"code": "token_invalid", "message": "<b>token</b> expired", "fields": {}}}'))
    up = answer.widget.get_by_role("button", name="Thumbs up")
    await up.click()
    status = answer.widget.get_by_role("status")
    await status.filter(has_text="Not sent").wait_for()
    assert await status.get_attribute("data-state") == "error"
    assert "<b>token</b> expired" in await status.inner_text()  # a message, shown as text
    assert await answer.widget.locator("b").count() == 0
    assert await up.get_attribute("aria-pressed") == "false"
    assert await up.is_enabled()
    browser_page.expected_console_errors = 1  # Chromium logs the 401
    await page.unroute("**/feedback/")
    await up.click()  # the retry goes through
    await status.filter(has_text="Thanks").wait_for()
    assert await up.get_attribute("aria-pressed") == "true"
    assert len(posts) == 2
    keys = [(await p.all_headers())["idempotency-key"] for p in posts]
    assert keys[0] == keys[1]  # the same submission, so the same Idempotency-Key
    items = await store_for(stores, app).find_by_trace(answer.trace_id)
    assert [(i.feedback_type, i.value) for i in items] == [("thumbs", 1)]


async def test_screenshot_of_the_widget(
    served: dict[str, ServedApp], browser_page: BrowserPage, tmp_path: Path
) -> None:
    app, page = served["fastapi"], browser_page.page
    await open_chat(page, app)
    await ask(page, "what does feedback-asgi store")
    answer = await ask(page, "show me the widget under an answer")
    await answer.widget.get_by_role("button", name="Thumbs down").click()
    await answer.widget.get_by_role("status").filter(has_text="Thanks").wait_for()
    await answer.widget.get_by_label("What was wrong? (optional)").fill(
        "It reversed my words instead of answering.")
    await answer.widget.get_by_label("What was wrong? (optional)").blur()
    save_screenshot(await page.screenshot(full_page=True), "widget.png", tmp_path)
