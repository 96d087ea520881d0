"""Driving the example chat page like a person: sign in, ask, wait for the streamed answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.browser.servers import DJANGO_PASSWORD, DJANGO_USER, ServedApp


@dataclass
class Answer:
    """One answered turn: the element the widget renders in, and the widget's trace id."""

    bot: Any
    widget: Any
    trace_id: str
    text: str


async def open_chat(page: Any, app: ServedApp) -> None:
    """Open the chat page; on the Django site, sign in through the login form first."""
    await page.goto(app.url + "/")
    if app.name == "django":
        assert "/accounts/login/" in page.url  # login_required sent us there
        await page.get_by_label("Username").fill(DJANGO_USER)
        await page.get_by_label("Password").fill(DJANGO_PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(app.url + "/")
    await page.get_by_label("Message").wait_for()
    # chat.js and the widget are deferred: wait until both ran
    await page.wait_for_function("window.FeedbackWidget !== undefined")


async def ask(page: Any, message: str, *, keyboard: bool = False) -> Answer:
    """Send ``message`` and wait until its answer streamed in and the widget rendered."""
    turns = page.locator("article.turn")
    before = await turns.count()
    box = page.get_by_label("Message")
    if keyboard:
        await box.focus()
        await page.keyboard.type(message)
        await page.keyboard.press("Enter")
    else:
        await box.fill(message)
        await page.get_by_role("button", name="Send", exact=True).click()
    turn = turns.nth(before)
    bot = turn.locator(".bot")
    widget = bot.locator(".fbw")
    await widget.wait_for()
    trace_id = await bot.get_attribute("data-feedback-trace")
    assert trace_id
    return Answer(bot, widget, trace_id, await bot.locator(".answer").inner_text())
