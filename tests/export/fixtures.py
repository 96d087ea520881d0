"""A small, hand-made feedback set with its expected export lines (written out by hand)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.storage.base import FeedbackStoreProtocol

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SINCE = datetime(2025, 3, 1, tzinfo=UTC)
UNTIL = datetime(2025, 3, 2, tzinfo=UTC)
TRICKY_INPUT = 'Quote "x" \\ tab\t newline\n é ✓ \x01 \x1f'
TRICKY_OUTPUT = "ok\u2028done\r\b\f"


def at(minutes: int, micro: int = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, microseconds=micro)


def ctx(trace: str, inp: Any, out: Any, model: str = "m1", **extra: Any) -> dict[str, Any]:
    context = {"trace_id": trace, "model": model, "provider": "openai", **extra}
    if inp is not None:
        context["input"] = inp
    if out is not None:
        context["output"] = out
    return context


CHAT_INPUT = {"messages": [
    {"role": "system", "content": "Be brief"},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hey"},
    {"role": "user", "content": "How are you?"},
]}


def fixture_items() -> list[FeedbackItem]:
    """The set, in save order (successors after their targets)."""
    edited = FeedbackItem("thumbs", 1, ctx("t3", "Q3", "A3"), id="i09a", created_at=at(9))
    retracted = FeedbackItem("thumbs", 1, ctx("t4", "Q4", "A4"), id="i10a", created_at=at(10))
    return [
        FeedbackItem("thumbs", 1, ctx("t1", "What is 2+2?", "4", intent="math", project="p1"),
                     {"comment": "great"}, id="i01", created_at=at(1)),
        FeedbackItem("thumbs", -1, ctx("t2", "Capital of France?", "Lyon"),
                     id="i02", created_at=at(2, 500_000)),
        FeedbackItem("rating", 5, ctx("t6", CHAT_INPUT, {"choices": [{"message": {"content": "Fine!"}}]},
                                      model="m2"), id="i03", created_at=at(3, 250_000)),
        FeedbackItem("rating", 3, ctx("t7", "Q7", "A7"), id="i04", created_at=at(4)),
        FeedbackItem("correction", {"original": "Lyon", "corrected": "Paris"},
                     ctx("t2", "Capital of France?", "Lyon"), {"comment": "wrong city"},
                     id="i05", created_at=at(5)),
        FeedbackItem("text", "meh", ctx("t8", "Q8", "A8"), id="i06", created_at=at(6)),
        FeedbackItem("thumbs", 1, {"trace_id": "t9"}, id="i07", created_at=at(7)),
        FeedbackItem("label", {"label": "spam", "input": "Buy now"}, {"trace_id": "t10"},
                     id="i08", created_at=at(8)),
        edited,
        retracted,
        FeedbackItem("thumbs", 1, ctx("t5", "Capital of France?", "Paris"),
                     id="i11", created_at=at(11)),
        FeedbackItem("thumbs", -1, ctx("t12", TRICKY_INPUT, TRICKY_OUTPUT, model="m2"),
                     id="i12", created_at=at(12, 1)),
        # an edit (up -> down) and a retraction, both later than everything else
        FeedbackItem("thumbs", -1, ctx("t3", "Q3", "A3"), id="i09b", created_at=at(20),
                     supersedes="i09a"),
        FeedbackItem("thumbs", 1, ctx("t4", "Q4", "A4"), id="i10b", created_at=at(21),
                     supersedes="i10a", tombstone=True),
        # outside the window
        FeedbackItem("thumbs", 1, ctx("t0", "old", "old"), id="i00",
                     created_at=SINCE - timedelta(seconds=1)),
    ]


async def load(store: FeedbackStoreProtocol) -> None:
    for item in fixture_items():
        result = await store.save(item)
        assert result.is_ok(), result


def line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _meta(fid: str, kind: str, polarity: str, trace: str, created: str, model: str = "m1",
          comment: str | None = None, intent: str | None = None,
          project: str | None = None) -> dict[str, Any]:
    return {"feedback_id": fid, "feedback_type": kind, "polarity": polarity, "trace_id": trace,
            "model": model, "provider": "openai", "intent": intent, "project": project,
            "created_at": created, "comment": comment}


def _chat(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


CHAT_PROMPT = CHAT_INPUT["messages"]

FINETUNE = [
    line({"messages": _chat("What is 2+2?", "4"), "weight": 2.0,
          "metadata": _meta("i01", "thumbs", "positive", "t1", "2025-03-01T12:01:00+00:00",
                            comment="great", intent="math", project="p1")}),
    line({"messages": _chat("Capital of France?", "Lyon"), "weight": 0.5,
          "metadata": _meta("i02", "thumbs", "negative", "t2", "2025-03-01T12:02:00.500000+00:00")}),
    line({"messages": [*CHAT_PROMPT, {"role": "assistant", "content": "Fine!"}], "weight": 2.0,
          "metadata": _meta("i03", "rating", "positive", "t6", "2025-03-01T12:03:00.250000+00:00",
                            model="m2")}),
    line({"messages": _chat("Capital of France?", "Paris"), "weight": 2.0,
          "metadata": _meta("i05", "correction", "positive", "t2", "2025-03-01T12:05:00+00:00",
                            comment="wrong city")}),
    line({"messages": _chat("Capital of France?", "Paris"), "weight": 2.0,
          "metadata": _meta("i11", "thumbs", "positive", "t5", "2025-03-01T12:11:00+00:00")}),
    line({"messages": _chat(TRICKY_INPUT, TRICKY_OUTPUT), "weight": 0.5,
          "metadata": _meta("i12", "thumbs", "negative", "t12", "2025-03-01T12:12:00.000001+00:00",
                            model="m2")}),
    line({"messages": _chat("Q3", "A3"), "weight": 0.5,
          "metadata": _meta("i09b", "thumbs", "negative", "t3", "2025-03-01T12:20:00+00:00")}),
]
FINETUNE_SKIPPED = {"neutral": 2, "no_exchange": 1, "not_applicable": 1}

# the escaping of the tricky line, spelled out
TRICKY_MESSAGES = (
    '{"messages":[{"role":"user","content":"Quote \\"x\\" \\\\ tab\\t newline\\n é ✓ \\u0001 \\u001f"},'
    '{"role":"assistant","content":"ok\u2028done\\r\\b\\f"}],"weight":0.5,'
)

FINETUNE_OPENAI = [
    line({"messages": [{"role": "user", "content": "What is 2+2?"},
                       {"role": "assistant", "content": "4", "weight": 1}]}),
    line({"messages": [CHAT_PROMPT[0], CHAT_PROMPT[1], {**CHAT_PROMPT[2], "weight": 0},
                       CHAT_PROMPT[3], {"role": "assistant", "content": "Fine!", "weight": 1}]}),
    line({"messages": [{"role": "user", "content": "Capital of France?"},
                       {"role": "assistant", "content": "Paris", "weight": 1}]}),
    line({"messages": [{"role": "user", "content": "Capital of France?"},
                       {"role": "assistant", "content": "Paris", "weight": 1}]}),
]

_FRANCE = [{"role": "user", "content": "Capital of France?"}]
PREFERENCES = [
    line({"prompt": _FRANCE, "chosen": [{"role": "assistant", "content": "Paris"}],
          "rejected": [{"role": "assistant", "content": "Lyon"}]}),
    line({"prompt": _FRANCE, "chosen": [{"role": "assistant", "content": "Paris"}],
          "rejected": [{"role": "assistant", "content": "Lyon"}]}),
]
PREFERENCES_SKIPPED = {"neutral": 2, "no_exchange": 1, "not_applicable": 1, "unpaired": 4}
PREFERENCES_OPENAI = [
    line({"input": {"messages": _FRANCE},
          "preferred_output": [{"role": "assistant", "content": "Paris"}],
          "non_preferred_output": [{"role": "assistant", "content": "Lyon"}]}),
] * 2


def _kto(prompt: Any, answer: str, label: bool) -> str:
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    return line({"prompt": prompt, "completion": [{"role": "assistant", "content": answer}],
                 "label": label})


KTO = [
    _kto("What is 2+2?", "4", True),
    _kto("Capital of France?", "Lyon", False),
    _kto(CHAT_PROMPT, "Fine!", True),
    _kto("Capital of France?", "Paris", True),
    _kto(TRICKY_INPUT, TRICKY_OUTPUT, False),
    _kto("Q3", "A3", False),
]
KTO_SKIPPED = {"neutral": 2, "no_exchange": 1, "not_applicable": 2}

LABELS = ['{"input":"Buy now","label":"spam"}\n']
LABELS_SKIPPED = {"not_applicable": 10}
