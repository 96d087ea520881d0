"""From a feedback item to the pieces of a training example: prompt, answer, polarity.

A *rated exchange* is a live item whose context has both an ``input`` (the prompt) and an
``output`` (the answer), each turning into non-empty text by these rules:

* ``input``: a string is one user message; ``{"messages": [...]}`` or a list of
  ``{"role", "content"}`` messages (an OpenAI-style request) is kept as those messages;
  an object with one of the text keys ``message``, ``prompt``, ``question``, ``query``,
  ``input``, ``text``, ``content`` is that text as a user message; anything else is its
  compact JSON as a user message.
* ``output``: a string is the answer; an OpenAI-style response
  (``choices[0].message.content``) or an object with one of ``answer``, ``output``,
  ``response``, ``completion``, ``content``, ``text``, ``message`` as text gives that
  text; anything else is its compact JSON.

Items without them are skipped and counted (``no_exchange``).
"""

from __future__ import annotations

import json
from typing import Any

from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.export.options import ExportOptions

__all__ = [
    "Message",
    "answer_text",
    "compact_json",
    "context_text",
    "corrected_text",
    "polarity",
    "prompt_messages",
]

Message = dict[str, str]

_PROMPT_KEYS = ("message", "prompt", "question", "query", "input", "text", "content")
_ANSWER_KEYS = ("answer", "output", "response", "completion", "content", "text", "message")
_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


def compact_json(value: Any) -> str:
    """The JSON text every export line uses: compact, UTF-8 kept, keys in insertion order."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


def _messages(value: Any) -> list[Message] | None:
    if not isinstance(value, list) or not value:
        return None
    messages: list[Message] = []
    for entry in value:
        if not isinstance(entry, dict):
            return None
        role, content = entry.get("role"), entry.get("content")
        if role not in _ROLES or not isinstance(content, str):
            return None
        messages.append({"role": role, "content": content})
    return messages


def prompt_messages(value: Any) -> list[Message] | None:
    """The prompt messages for an exchange ``input``, or ``None`` when there is none."""
    if value is None:
        return None
    if isinstance(value, str):
        return [{"role": "user", "content": value}] if value else None
    if isinstance(value, list):
        found = _messages(value)
        if found is not None:
            return found
    if isinstance(value, dict):
        found = _messages(value.get("messages"))
        if found is not None:
            return found
        for key in _PROMPT_KEYS:
            text = value.get(key)
            if isinstance(text, str) and text:
                return [{"role": "user", "content": text}]
    if value == {} or value == []:
        return None
    return [{"role": "user", "content": _canonical(value)}]


def answer_text(value: Any) -> str | None:
    """The answer text for an exchange ``output``, or ``None`` when there is none."""
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        choices = value.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                return message["content"] or None
        for key in _ANSWER_KEYS:
            text = value.get(key)
            if isinstance(text, str) and text:
                return text
    if value == {} or value == []:
        return None
    return _canonical(value)


def corrected_text(item: FeedbackItem) -> str | None:
    """The corrected answer of a correction, or ``None``."""
    value = item.value
    if isinstance(value, dict):
        text = value.get("corrected")
        if isinstance(text, str) and text:
            return text
    return None


def context_text(item: FeedbackItem, key: str) -> str | None:
    """A context value when it is a string (what the SQL stores index), else ``None``."""
    value = item.context.get(key)
    return value if isinstance(value, str) else None


def polarity(item: FeedbackItem, options: ExportOptions) -> int | None:
    """+1, -1, 0 (neutral) for thumbs, ratings, corrections (+1) and text (0); else ``None``.

    Thumbs follow the stored value (1 up, -1 down, anything else neutral); a rating is
    compared with ``options.positive_rating`` / ``negative_rating``.
    """
    kind = item.feedback_type
    value = item.value
    if kind == FeedbackType.THUMBS:
        if value == 1:
            return 1
        return -1 if value == -1 else 0
    if kind == FeedbackType.RATING:
        if not isinstance(value, int | float):
            return 0
        if value >= options.positive_rating:
            return 1
        return -1 if value <= options.negative_rating else 0
    if kind == FeedbackType.CORRECTION:
        return 1
    if kind == FeedbackType.TEXT:
        return 0
    return None
