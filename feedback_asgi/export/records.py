"""One export line per item: the finetune, KTO and labels records, and pair records.

Every line is compact JSON (``ensure_ascii=False``, no spaces) with keys in a fixed order,
ending in ``"\\n"``. The PostgreSQL fast path renders the same bytes (a test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.export.exchange import (
    Message,
    answer_text,
    compact_json,
    context_text,
    corrected_text,
    polarity,
    prompt_messages,
)
from feedback_asgi.export.options import EXPORT_FILTERS, ExportFormat, ExportOptions, ExportReport

__all__ = [
    "FinetuneFacts",
    "finetune_line",
    "item_line",
    "kto_line",
    "label_line",
    "matches_filters",
    "pair_line",
    "weight_for",
]

POLARITY_NAMES = {1: "positive", -1: "negative", 0: "neutral"}


@dataclass(frozen=True, slots=True)
class FinetuneFacts:
    """The metadata of a finetune line (what the item rated and who said what)."""

    feedback_id: str
    feedback_type: str
    trace_id: str | None
    model: str | None
    provider: str | None
    intent: str | None
    project: str | None
    created_at: datetime
    comment: str | None

    @classmethod
    def of(cls, item: FeedbackItem) -> FinetuneFacts:
        """The facts of ``item``."""
        comment = item.metadata.get("comment")
        return cls(
            item.id,
            str(item.feedback_type),
            context_text(item, "trace_id"),
            context_text(item, "model"),
            context_text(item, "provider"),
            context_text(item, "intent"),
            context_text(item, "project"),
            item.created_at,
            comment if isinstance(comment, str) else None,
        )


def matches_filters(item: FeedbackItem, options: ExportOptions) -> bool:
    """Whether ``item`` passes the filters (:data:`~feedback_asgi.export.options.EXPORT_FILTERS`)."""
    for key in EXPORT_FILTERS:
        wanted = getattr(options, key)
        if wanted is not None and item.context.get(key) != wanted:
            return False
    return True


def weight_for(sign: int, options: ExportOptions) -> float:
    """The example weight of a positive, negative or neutral example."""
    if sign > 0:
        return options.positive_weight
    return options.negative_weight if sign < 0 else options.neutral_weight


def finetune_line(
    prompt: list[Message], answer: str, sign: int, facts: FinetuneFacts, options: ExportOptions
) -> str | None:
    """The finetune line, or ``None`` when the openai format leaves a negative out."""
    record: dict[str, Any]
    if options.format is ExportFormat.OPENAI:
        if sign < 0:
            return None
        # only the rated answer is trained on: earlier assistant turns get weight 0
        messages: list[dict[str, Any]] = [
            {**m, "weight": 0} if m["role"] == "assistant" else m for m in prompt
        ]
        messages.append({"role": "assistant", "content": answer, "weight": 1})
        record = {"messages": messages}
    else:
        record = {
            "messages": [*prompt, {"role": "assistant", "content": answer}],
            "weight": weight_for(sign, options),
            "metadata": {
                "feedback_id": facts.feedback_id,
                "feedback_type": facts.feedback_type,
                "polarity": POLARITY_NAMES[sign],
                "trace_id": facts.trace_id,
                "model": facts.model,
                "provider": facts.provider,
                "intent": facts.intent,
                "project": facts.project,
                "created_at": facts.created_at.isoformat(),
                "comment": facts.comment,
            },
        }
    return compact_json(record) + "\n"


def kto_line(prompt: list[Message], answer: str, sign: int) -> str:
    """TRL's unpaired preference record (conversational)."""
    record = {
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": answer}],
        "label": sign > 0,
    }
    return compact_json(record) + "\n"


def pair_line(prompt: list[Message], chosen: str, rejected: str, options: ExportOptions) -> str:
    """A preference pair in TRL's conversational shape or OpenAI's DPO shape."""
    record: dict[str, Any]
    if options.format is ExportFormat.OPENAI:
        record = {
            "input": {"messages": prompt},
            "preferred_output": [{"role": "assistant", "content": chosen}],
            "non_preferred_output": [{"role": "assistant", "content": rejected}],
        }
    else:
        record = {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
    return compact_json(record) + "\n"


def label_line(item: FeedbackItem) -> str | None:
    """``{"input", "label"}``: the label's own input, else the exchange input."""
    value = item.value if isinstance(item.value, dict) else {}
    label = value.get("label")
    data = value.get("input")
    if data is None:
        data = item.context.get("input")
    if data is None or label is None:
        return None
    return compact_json({"input": data, "label": label}) + "\n"


def item_line(item: FeedbackItem, options: ExportOptions, report: ExportReport) -> str | None:
    """The line of one item for the finetune, KTO and labels exports (``None``: skipped)."""
    kind = options.kind
    if kind == "labels":
        if item.feedback_type != FeedbackType.LABEL:
            report.skipped["not_applicable"] += 1
            return None
        line = label_line(item)
        if line is None:
            report.skipped["no_exchange"] += 1
        return line
    sign = polarity(item, options)
    if sign is None or (kind == "kto" and item.feedback_type == FeedbackType.CORRECTION):
        report.skipped["not_applicable"] += 1
        return None
    if sign == 0 and (kind == "kto" or not options.include_neutral):
        report.skipped["neutral"] += 1
        return None
    prompt = prompt_messages(item.context.get("input"))
    if item.feedback_type == FeedbackType.CORRECTION:
        answer = corrected_text(item)
    else:
        answer = answer_text(item.context.get("output"))
    if prompt is None or answer is None:
        report.skipped["no_exchange"] += 1
        return None
    if kind == "kto":
        return kto_line(prompt, answer, sign)
    line = finetune_line(prompt, answer, sign, FinetuneFacts.of(item), options)
    if line is None:
        report.skipped["negative"] += 1
    return line
