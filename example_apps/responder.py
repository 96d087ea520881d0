"""The deterministic stand-in for a language model that the example apps share."""

from __future__ import annotations

MODEL = "echo-1"


def local_model(message: str) -> str:
    """A deterministic stand-in for a language model."""
    words = message.split()
    if not words:
        return "Say something and I will answer."
    longest = max(words, key=len)
    return (
        f"You wrote {len(words)} word{'s' if len(words) != 1 else ''}; "
        f"the longest is '{longest}'. Backwards: {' '.join(reversed(words))}."
    )
