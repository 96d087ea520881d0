"""Each example app in a real browser: chat, streamed answer, thumbs-down with a comment,
and the stored item rates that exact answer under the browser's session."""

from __future__ import annotations

from typing import Any

import pytest

from example_apps.responder import MODEL, local_model
from feedback_asgi.core.records import FeedbackItem
from tests.browser.chat import Answer, ask, open_chat
from tests.browser.conftest import BrowserPage, expected_session, store_for
from tests.browser.servers import ServedApp

pytestmark = pytest.mark.asyncio(loop_scope="session")

APPS = ("fastapi", "starlette", "django")


async def stored(stores: dict[str, Any], app: ServedApp, answer: Answer, kind: str) -> FeedbackItem:
    """The live item of ``kind`` on the answer's trace (exactly one)."""
    items = [i for i in await store_for(stores, app).find_by_trace(answer.trace_id)
             if i.feedback_type == kind]
    assert len(items) == 1, items
    return items[0]


def assert_rates(item: FeedbackItem, message: str, answer: Answer, session_id: str) -> None:
    assert item.context["input"] == message
    assert item.context["output"] == local_model(message) == answer.text
    assert item.context["model"] == MODEL
    assert item.context["trace_id"] == answer.trace_id
    assert item.context["session_id"] == session_id


@pytest.mark.parametrize("name", APPS)
async def test_thumbs_down_with_a_comment_rates_that_answer_in_that_session(
    name: str, served: dict[str, ServedApp], stores: dict[str, Any], browser_page: BrowserPage
) -> None:
    app, page = served[name], browser_page.page
    await open_chat(page, app)
    await ask(page, "what is the capital of France")  # an earlier answer, not the rated one
    message = f"please rate this {name} answer"
    answer = await ask(page, message)
    assert answer.text == local_model(message)
    down = answer.widget.get_by_role("button", name="Thumbs down")
    await down.click()
    comment = answer.widget.get_by_label("What was wrong? (optional)")
    await comment.fill("It answered backwards.")
    await answer.widget.get_by_role("button", name="Send feedback").click()
    status = answer.widget.get_by_role("status")
    await status.filter(has_text="Thanks").wait_for()
    assert await status.get_attribute("data-state") == "sent"
    assert await down.get_attribute("aria-pressed") == "true"
    assert await answer.widget.get_by_role("button", name="Thumbs up").get_attribute(
        "aria-pressed") == "false"
    await comment.wait_for(state="hidden")

    item = await stored(stores, app, answer, "thumbs")
    assert item.value == -1
    assert item.comment == "It answered backwards."
    assert_rates(item, message, answer, expected_session(app, await browser_page.context.cookies()))
    if name == "django":
        assert item.context["user_id"]  # signed in: the user is recorded too
        # the chat POST is CSRF-protected: without the form's token it is refused
        refused = await page.evaluate("""async () => (await fetch("/ask/", {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({message: "no token"})})).status""")
        assert refused == 403
        browser_page.expected_console_errors = 1  # Chromium logs the 403


async def test_keyboard_only(
    served: dict[str, ServedApp], stores: dict[str, Any], browser_page: BrowserPage
) -> None:
    app, page = served["fastapi"], browser_page.page
    await open_chat(page, app)
    message = "typed without a mouse"
    answer = await ask(page, message, keyboard=True)
    # Tab from the message box: Send, then the answer's widget
    for _ in range(10):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.getAttribute('aria-label')") == "Thumbs down":
            break
    else:
        pytest.fail("Tab never reached the Thumbs down button")
    await page.keyboard.press("Enter")
    # the comment box opens and takes the focus
    focused = await page.evaluate("document.activeElement.labels[0].textContent")
    assert focused == "What was wrong? (optional)"
    await page.keyboard.type("Too short.")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Send feedback"
    await page.keyboard.press("Space")
    await answer.widget.get_by_role("status").filter(has_text="Thanks").wait_for()
    # the box closed and the focus went back to the vote, not to the page's start
    assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "Thumbs down")
    item = await stored(stores, app, answer, "thumbs")
    assert (item.value, item.comment) == (-1, "Too short.")
    assert_rates(item, message, answer, expected_session(app, await browser_page.context.cookies()))


@pytest.mark.parametrize("name", APPS)
async def test_strict_csp_page_runs_without_violations(
    name: str, served: dict[str, ServedApp], browser_page: BrowserPage
) -> None:
    app, page = served[name], browser_page.page
    await open_chat(page, app)
    response = await page.goto(app.url + "/")
    policy = (await response.all_headers())["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe" not in policy
    answer = await ask(page, "does the widget style itself")
    # the widget's stylesheet applied (a constructed sheet: no inline style needed)
    display = await answer.widget.evaluate("el => getComputedStyle(el).display")
    assert display == "flex"
    accent = await answer.widget.evaluate(
        "el => getComputedStyle(el).getPropertyValue('--fbw-accent').trim()")
    assert accent == "#0f766e"  # chat.css overrides the widget's colour variable
    assert await page.evaluate("window.__problems") == []
    # the recorder does catch a violation: an inline script is refused under this policy
    await page.evaluate("""() => {
        const s = document.createElement("script");
        s.textContent = "window.__ran = true";
        document.body.append(s);
    }""")
    await page.wait_for_function("window.__problems.length > 0")
    assert await page.evaluate("window.__ran") is None
    violations = await page.evaluate("window.__problems.splice(0)")
    assert violations
    assert violations[0].startswith("CSP: script-src")
    browser_page.expected_console_errors = len(browser_page.problems.console)
    assert browser_page.expected_console_errors >= 1  # Chromium logs the refusal too
