"""Every export kind and format on the hand-made set, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.export import ExportOptions, ExportReport, export_chunks, write_export
from feedback_asgi.export.postgres import postgres_store
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from tests.export import fixtures as fx


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the store lives: memory, a SQLite file, a fresh PostgreSQL database."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'export.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[FeedbackStoreProtocol]:
    """A store of each kind holding the fixture set."""
    built: FeedbackStoreProtocol = (
        MemoryFeedbackStore() if store_url == "memory://" else SqlFeedbackStore(store_url)
    )
    await fx.load(built)
    yield built
    await built.close()


async def _export(store: FeedbackStoreProtocol, fast_path: bool = True, **options: object
                  ) -> tuple[list[str], ExportReport]:
    report = ExportReport()
    opts = ExportOptions(since=fx.SINCE, until=fx.UNTIL, **options)  # type: ignore[arg-type]
    text = "".join([chunk async for chunk in export_chunks(store, opts, report, fast_path=fast_path)])
    # split on "\n" only: U+2028 inside a JSON string is not a line break
    return [part + "\n" for part in text.split("\n")[:-1]], report


@pytest.mark.parametrize("fast_path", [True, False])
async def test_finetune_lines_weights_and_skips(store: FeedbackStoreProtocol, fast_path: bool) -> None:
    lines, report = await _export(store, fast_path)
    assert lines == fx.FINETUNE
    assert fx.TRICKY_MESSAGES in lines[5]
    assert dict(report.skipped) == fx.FINETUNE_SKIPPED
    assert (report.scanned, report.written) == (11, 7)


async def test_postgres_takes_the_fast_path(store: FeedbackStoreProtocol) -> None:
    expected = isinstance(store, SqlFeedbackStore) and store.dialect_name == "postgresql"
    assert (postgres_store(store) is not None) is expected


async def test_finetune_weights_are_configurable(store: FeedbackStoreProtocol) -> None:
    lines, report = await _export(store, positive_weight=3.0, negative_weight=0.0,
                                  include_neutral=True, neutral_weight=1.0)
    weights = [line.split('"weight":')[1].split(",")[0] for line in lines]
    assert weights == ["3.0", "0.0", "3.0", "1.0", "3.0", "1.0", "3.0", "0.0", "0.0"]
    assert dict(report.skipped) == {"no_exchange": 1, "not_applicable": 1}


async def test_finetune_rating_thresholds(store: FeedbackStoreProtocol) -> None:
    # a 3 counts as positive once the threshold is 3; the 5 stays positive
    lines, _ = await _export(store, positive_rating=3.0, negative_rating=1.0)
    rated = [line for line in lines if '"feedback_type":"rating"' in line]
    assert len(rated) == 2
    assert all('"polarity":"positive"' in line for line in rated)


async def test_finetune_openai_format(store: FeedbackStoreProtocol) -> None:
    lines, report = await _export(store, format="openai")
    assert lines == fx.FINETUNE_OPENAI
    assert report.skipped["negative"] == 3


async def test_filters_by_model_intent_project(store: FeedbackStoreProtocol) -> None:
    lines, report = await _export(store, model="m2")
    assert lines == [fx.FINETUNE[2], fx.FINETUNE[5]]
    assert report.skipped["filtered"] == 9 or postgres_store(store) is not None  # SQL filters
    lines, _ = await _export(store, intent="math", project="p1")
    assert lines == [fx.FINETUNE[0]]
    lines, _ = await _export(store, model="m1", intent="nope")
    assert lines == []


async def test_preferences(store: FeedbackStoreProtocol) -> None:
    lines, report = await _export(store, kind="preferences")
    assert lines == fx.PREFERENCES
    assert dict(report.skipped) == fx.PREFERENCES_SKIPPED
    lines, _ = await _export(store, kind="preferences", format="openai")
    assert lines == fx.PREFERENCES_OPENAI


async def test_kto(store: FeedbackStoreProtocol) -> None:
    lines, report = await _export(store, kind="kto")
    assert lines == fx.KTO
    assert dict(report.skipped) == fx.KTO_SKIPPED


async def test_labels(store: FeedbackStoreProtocol) -> None:
    lines, report = await _export(store, kind="labels")
    assert lines == fx.LABELS
    assert dict(report.skipped) == fx.LABELS_SKIPPED


async def test_default_window_is_last_seven_days(store: FeedbackStoreProtocol) -> None:
    # the fixture set is from 2025: nothing in the last 7 days
    chunks: list[str] = []
    report = await write_export(store, ExportOptions(), chunks.append)
    assert "".join(chunks) == ""
    assert report.scanned == 0


async def test_export_is_deterministic(store: FeedbackStoreProtocol) -> None:
    first, _ = await _export(store, kind="preferences")
    second, _ = await _export(store, kind="preferences")
    assert first == second


def test_bad_options_are_refused() -> None:
    with pytest.raises(FeedbackValidationError) as excinfo:
        ExportOptions(kind="kto", format="openai")  # type: ignore[arg-type]
    assert "format" in excinfo.value.fields
    with pytest.raises(FeedbackValidationError):
        ExportOptions(since=fx.UNTIL, until=fx.SINCE)
    with pytest.raises(FeedbackValidationError) as excinfo:
        ExportOptions.from_mapping("finetune", {"since": "yesterday"})
    assert "since" in excinfo.value.fields
    with pytest.raises(FeedbackValidationError) as excinfo:
        ExportOptions.from_mapping("finetune", {"colour": "red"})
    assert "colour" in excinfo.value.fields
    with pytest.raises(FeedbackValidationError):
        ExportOptions.from_mapping("essay", {})
    opts = ExportOptions.from_mapping(
        "kto", {"since": "2025-03-01", "model": "m1", "include_neutral": "true",
                "positive_weight": "3"})
    assert (opts.since, opts.model, opts.include_neutral, opts.positive_weight) == (
        fx.SINCE, "m1", True, 3.0)


@pytest.mark.parametrize("fast_path", [True, False])
async def test_filters_by_the_clients_and_the_tracing_systems_ids(
    store: FeedbackStoreProtocol, fast_path: bool
) -> None:
    # the items of the fixture set carry neither id; rated answers that do, added here
    tagged = [
        FeedbackItem("thumbs", 1, context={"trace_id": f"tagged-{n}", "input": f"q{n}",
                                           "output": f"a{n}", "request_id": f"req-{n % 2}",
                                           "otel_trace_id": "0af7651916cd43dd8448eb211c80319c"},
                     created_at=fx.SINCE + timedelta(minutes=n + 1))
        for n in range(3)
    ]
    assert (await store.save_many(tagged)).is_ok()
    lines, _ = await _export(store, fast_path, request_id="req-0")
    assert [json.loads(line)["messages"][0]["content"] for line in lines] == ["q0", "q2"]
    lines, _ = await _export(store, fast_path, otel_trace_id="0af7651916cd43dd8448eb211c80319c",
                             request_id="req-1")
    assert [json.loads(line)["messages"][0]["content"] for line in lines] == ["q1"]
    assert ExportOptions.from_mapping("finetune", {"request_id": "req-0"}).request_id == "req-0"
