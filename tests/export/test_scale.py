"""The fast path renders what the generic path renders; big exports stay in bounded memory."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.export import ExportOptions, ExportReport, export_chunks
from feedback_asgi.export import pairs as pairs_module
from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.storage.sql.store import SqlFeedbackStore

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=30)
ALPHABET = 'ab "\\\t\n\r\b\f\x01\x1f\x7fé✓\u2028😀/<>&\''


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def _value(rng: random.Random) -> Any:
    return rng.choice([
        lambda: _text(rng),
        lambda: None,
        lambda: "",
        lambda: {"message": _text(rng)},
        lambda: {"messages": [{"role": "user", "content": _text(rng)}]},
        lambda: {"choices": [{"message": {"content": _text(rng)}}]},
        lambda: {"n": rng.randint(0, 9), "t": _text(rng)},
        lambda: [1, 2.5, _text(rng)],
    ])()


def _random_item(rng: random.Random, i: int) -> FeedbackItem:
    kind = rng.choice(["thumbs", "thumbs", "rating", "correction", "text", "label"])
    value: Any = {
        "thumbs": lambda: rng.choice([1, -1, None]),
        "rating": lambda: rng.choice([1, 2, 2.5, 3, 4, 4.5, 5]),
        "correction": lambda: {"original": _text(rng), "corrected": rng.choice([_text(rng), ""])},
        "text": lambda: _text(rng) or "x",
        "label": lambda: {"label": "a", "input": _text(rng)},
    }[kind]()
    context: dict[str, Any] = {"trace_id": f"t{i}", "model": rng.choice(["m1", "m2", None])}
    for key in ("input", "output"):
        if rng.random() < 0.9:
            context[key] = _value(rng)
    if rng.random() < 0.3:
        context["intent"] = _text(rng) or None
    metadata = {"comment": _text(rng)} if rng.random() < 0.4 else {"comment": 5}
    micro = rng.choice([0, rng.randint(1, 999_999)])
    created = START + timedelta(seconds=rng.randint(0, 30 * 86_400 - 1), microseconds=micro)
    return FeedbackItem(kind, value, context, metadata, id=f"r{i:05d}", created_at=created)


@pytest.mark.postgres
async def test_fast_path_renders_the_generic_bytes(postgres_url: str) -> None:
    rng = random.Random(7)
    store = SqlFeedbackStore(postgres_url)
    try:
        items = [_random_item(rng, i) for i in range(3000)]
        assert (await store.save_many(items)).is_ok()
        for options in (
            ExportOptions(since=START, until=END),
            ExportOptions(since=START, until=END, include_neutral=True, positive_weight=1.5),
            ExportOptions(since=START + timedelta(days=3), until=END, model="m2",
                          positive_rating=4.5, negative_rating=2.5),
        ):
            fast, slow = ExportReport(), ExportReport()
            fast_text = "".join([c async for c in export_chunks(store, options, fast)])
            slow_text = "".join([c async for c in export_chunks(store, options, slow,
                                                                fast_path=False)])
            assert fast.written > 100
            assert fast_text == slow_text
            assert fast.written == slow.written
            slow.skipped.pop("filtered", None)
            assert fast.skipped == slow.skipped
    finally:
        await store.close()


async def test_preferences_spilled_runs_give_the_in_memory_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(3)
    store = MemoryFeedbackStore()
    prompts = [f"prompt {n}" for n in range(40)]
    for i in range(2000):
        item = FeedbackItem(
            "thumbs", rng.choice([1, -1]),
            {"input": rng.choice(prompts), "output": f"answer {rng.randint(0, 3)}"},
            id=f"v{i:05d}", created_at=START + timedelta(seconds=i),
        )
        assert (await store.save(item)).is_ok()
    options = ExportOptions(kind="preferences", since=START, until=END)  # type: ignore[arg-type]
    in_memory = "".join([c async for c in export_chunks(store, options)])
    made: list[pairs_module.VoteSpill] = []
    original_init = pairs_module.VoteSpill.__init__

    def small_runs(self: pairs_module.VoteSpill, *, run_bytes: int | None = None) -> None:
        original_init(self, run_bytes=4096)
        made.append(self)

    monkeypatch.setattr(pairs_module.VoteSpill, "__init__", small_runs)
    report = ExportReport()
    spilled = "".join([c async for c in export_chunks(store, options, report)])
    assert made
    assert made[0].runs == 0  # closed after the export
    assert spilled == in_memory
    assert report.written > 500
    assert report.written * 2 + report.skipped["unpaired"] == 2000


FILL = """
INSERT INTO ai_feedback (id, kind, created_at, trace_id, model, thumbs, tombstone, is_live,
                         root_id, value, context, metadata)
SELECT 'x' || lpad(i::text, 6, '0'), 'thumbs', $1::timestamptz + i * interval '20 seconds',
       't' || i, 'm1', CASE WHEN i % 3 = 0 THEN -1 ELSE 1 END, false, true,
       'x' || lpad(i::text, 6, '0'), to_jsonb(CASE WHEN i % 3 = 0 THEN -1 ELSE 1 END),
       jsonb_build_object('trace_id', 't' || i, 'model', 'm1',
                          'input', 'question ' || (i % 500) || ' ' || repeat('q', 150),
                          'output', 'answer ' || i || ' ' || repeat('a', 200)),
       '{}'::jsonb
FROM generate_series(0, 99999) AS i
"""


@pytest.mark.slow
@pytest.mark.postgres
async def test_export_of_100k_rows_in_bounded_memory(postgres_url: str) -> None:
    store = SqlFeedbackStore(postgres_url)
    try:
        await store.ping()
        engine = await store.read_engine()  # creates the table
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.execute(FILL, START)
    finally:
        await store.close()
    for kind, mode in (("finetune", "fast"), ("finetune", "generic"), ("preferences", "generic")):
        figures = _export_in_child(postgres_url, kind, mode)
        growth_mb = (figures["rss_peak_kb"] - figures["rss_before_kb"]) / 1024
        print(kind, mode, figures, f"growth {growth_mb:.1f} MB")
        assert figures["written"] == 100_000 if kind == "finetune" else figures["written"] > 30_000
        if kind == "finetune":
            assert figures["bytes"] > 50_000_000  # the whole file is ~55 MB ...
        assert growth_mb < 40, (kind, mode, figures)  # ... the exporting process grows far less


def _export_in_child(url: str, kind: str, mode: str) -> dict[str, int]:
    command = [sys.executable, "-m", "tests.export.rss_child", url, kind, mode,
               START.isoformat(), END.isoformat()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=100, check=True,
                          cwd=Path(__file__).parents[2])
    figures: dict[str, int] = json.loads(done.stdout)
    return figures
