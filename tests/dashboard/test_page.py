"""What the dashboard page shows: the analytics figures, the negatives, everything escaped."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from feedback_asgi.analytics import feedback_stats, feedback_timeseries
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import FeedbackItem, utc_now
from feedback_asgi.dashboard.data import NEGATIVE_LIMIT, WINDOWS
from feedback_asgi.dashboard.render import NO_MODEL
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.storage.memory import MemoryFeedbackStore
from tests.endpoint.apps import SURFACES, build, client

ADMIN = "page-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {ADMIN}"}
PAYLOAD = "<script>alert(1)</script><img src=x onerror=\"alert(2)\">\"'&amp;"


@dataclass
class Page(HTMLParser):
    """The parsed page: every start tag with its attributes, and the text (unescaped)."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    model_rows: dict[str, dict[str, str]] = field(default_factory=dict)
    counts: dict[str, str] = field(default_factory=dict)
    circle_titles: list[str] = field(default_factory=list)
    negative_ids: list[str] = field(default_factory=list)
    _open: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    _row: str | None = None

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "tr" and "data-model" in attributes:
            self._row = attributes["data-model"]
            self.model_rows[self._row or ""] = {}
        if tag == "li" and "data-feedback-id" in attributes:
            self.negative_ids.append(attributes["data-feedback-id"] or "")
        if tag not in ("rect", "line", "polyline", "meta", "link", "input"):  # void here
            self._open.append((tag, attributes))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, _ = self._open.pop()
            if name == tag:
                break
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if not self._open:
            return
        tag, attributes = self._open[-1]
        if tag == "dd" and attributes.get("data-figure"):
            self.figures[attributes["data-figure"] or ""] = data
        if tag == "td" and attributes.get("data-figure") and self._row is not None:
            self.model_rows[self._row][attributes["data-figure"] or ""] = data
        if tag == "td" and attributes.get("data-count"):
            self.counts[attributes["data-count"] or ""] = data
        if tag == "title" and len(self._open) > 1 and self._open[-2][0] == "circle":
            self.circle_titles.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.0%}"


def rating(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.2f}"


HOURS = [0.5, 2, 5, 20, 30, 50, 100, 140, 200, 400, 1000]
"""Ages of the fixture items in hours: each window edge (24h, 7d, 30d, 90d) is hours away."""


def fixture_items() -> list[FeedbackItem]:
    now = utc_now()
    items: list[FeedbackItem] = []
    models = ["alpha", "beta", None]
    for index, hours in enumerate(HOURS):
        for number, model in enumerate(models):
            when = now - timedelta(hours=hours, minutes=number)
            context: dict[str, Any] = {"trace_id": f"t-{index}-{number}",
                                       "input": f"question {index}", "output": f"answer {index}"}
            if model is not None:
                context["model"] = model
            thumbs = 1 if (index + number) % 3 else -1
            items.append(FeedbackItem("thumbs", thumbs, context, created_at=when))
            items.append(FeedbackItem("rating", 1 + (index + 2 * number) % 5, context,
                                      {"comment": f"rated {index}"}, created_at=when))
            if index % 4 == number:
                items.append(FeedbackItem("correction", {"original": f"answer {index}",
                                                         "corrected": f"better {index}"},
                                          context, created_at=when))
            if index % 2:
                items.append(FeedbackItem("text", f"note {index}", context, created_at=when))
    return items


def expected_negatives(items: list[FeedbackItem], window: str) -> list[str]:
    hours = {"24h": 24, "7d": 168, "30d": 720, "90d": 2160}[window]
    since = utc_now() - timedelta(hours=hours)
    negative = [
        item for item in items if item.created_at >= since and (
            (item.feedback_type == "thumbs" and item.value == -1)
            or (item.feedback_type == "rating" and item.value <= 2)
            or item.feedback_type == "correction")
    ]
    negative.sort(key=lambda item: (item.created_at, item.id), reverse=True)
    return [item.id for item in negative[:NEGATIVE_LIMIT]]


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FeedbackStoreProtocol]:
    if request.param == "memory":
        yield MemoryFeedbackStore()
        return
    from feedback_asgi.storage.sql.store import SqlFeedbackStore

    sql = SqlFeedbackStore(f"sqlite+aiosqlite:///{tmp_path / 'page.db'}")
    try:
        yield sql
    finally:
        await sql.close()


def kit_for(store: FeedbackStoreProtocol) -> FeedbackKit:
    config = FeedbackConfig(admin_token=ADMIN, secret_key="page-secret-0123456789abcdef0123456")
    return FeedbackKit(config, store=store)


async def test_figures_match_the_analytics(store: FeedbackStoreProtocol) -> None:
    items = fixture_items()
    assert (await store.save_many(items)).is_ok()
    app = build("endpoint", kit_for(store)).app
    async with client(app) as http:
        for window, interval in WINDOWS.items():
            response = await http.get(f"/feedback/dashboard?window={window}", headers=BEARER)
            assert response.status_code == 200, response.text
            page = parse(response.text)
            report = await feedback_stats(store, window=window, by="model")
            totals = report.totals
            assert totals is not None
            assert totals.total_count > 0
            assert page.figures == {
                "total_count": str(totals.total_count),
                "thumbs_up_rate": percent(totals.thumbs_up_rate),
                "thumbs_up": str(totals.thumbs_up),
                "thumbs_down": str(totals.thumbs_down),
                "average_rating": rating(totals.average_rating),
                "rating_count": str(totals.rating_count),
            }, window
            assert page.counts == {kind: str(n) for kind, n in totals.count_by_type.items()}
            assert page.model_rows == {
                (group.key or NO_MODEL): {
                    "total_count": str(group.total_count),
                    "thumbs_up_rate": percent(group.thumbs_up_rate),
                    "thumbs_up": str(group.thumbs_up),
                    "thumbs_down": str(group.thumbs_down),
                    "average_rating": rating(group.average_rating),
                } for group in report.groups
            }
            series = await feedback_timeseries(store, window=window, interval=interval, by="model")
            label = "%H:%M" if interval == "hour" else "%b %d"
            assert Counter(page.circle_titles) == Counter(
                f"{point.key or NO_MODEL}, {point.bucket.strftime(label)}: "
                f"{point.thumbs_up_rate:.0%}"
                for point in series.groups
                if point.thumbs_up_rate is not None and point.bucket is not None
            ), window
            assert page.negative_ids == expected_negatives(items, window), window


async def test_an_empty_store_shows_zeros_and_empty_states() -> None:
    app = build("endpoint", kit_for(MemoryFeedbackStore())).app
    async with client(app) as http:
        response = await http.get("/feedback/dashboard", headers=BEARER)
    page = parse(response.text)
    assert page.figures["total_count"] == "0"
    assert page.figures["thumbs_up_rate"] == "\u2013"
    assert "No thumbs votes in this window." in page.text
    assert "No negative feedback in this window." in page.text


@pytest.mark.parametrize("surface", SURFACES)
async def test_every_user_written_string_is_escaped(surface: str) -> None:
    store = MemoryFeedbackStore()
    context = {"trace_id": "t-x", "model": PAYLOAD, "input": PAYLOAD, "output": PAYLOAD}
    items = [
        FeedbackItem("thumbs", -1, context, {"comment": PAYLOAD}),
        FeedbackItem("correction", {"original": PAYLOAD, "corrected": PAYLOAD}, context,
                     {"comment": PAYLOAD}),
        FeedbackItem("rating", 1, {**context, "input": {"messages": [PAYLOAD]}}),
    ]
    assert (await store.save_many(items)).is_ok()
    async with client(build(surface, kit_for(store)).app) as http:
        response = await http.get("/feedback/dashboard", headers=BEARER)
    assert response.status_code == 200
    page = parse(response.text)
    names = {tag for tag, _ in page.tags}
    assert "script" not in names
    assert "img" not in names
    handlers = [name for _, attrs in page.tags for name in attrs if name.startswith("on")]
    assert handlers == []
    # the payload survives as text: comments, inputs, outputs, corrections, model names
    assert page.text.count(PAYLOAD) >= 3 + 3 + 2 + 1 + 3
    assert page.model_rows.keys() == {PAYLOAD}  # read back from the quoted attribute intact
    assert any(title.startswith(PAYLOAD + ", ") for title in page.circle_titles)
    svg_labels = [attrs.get("aria-label") for tag, attrs in page.tags if tag == "svg"]
    assert svg_labels == ["Thumbs-up rate per model over time", "Feedback by type"]
    assert '"messages"' in page.text  # structured input shown as JSON text
