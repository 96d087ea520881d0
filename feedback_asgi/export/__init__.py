"""Training data from feedback: JSON Lines for fine-tuning, preference, KTO and label trainers.

::

    from feedback_asgi.export import ExportKind, ExportOptions, write_export

    with open("train.jsonl", "w") as out:
        report = await write_export(store, ExportOptions(kind=ExportKind.FINETUNE), out.write)

Exports (``kind``) and their shapes (``format``):

* ``finetune``: ``{"messages": [..., {"role": "assistant", ...}], "weight": w, "metadata"}``
  (an example-level float weight as Fireworks' weighted training and TRL sample weights
  take it: https://docs.fireworks.ai/fine-tuning/weighted-training); positive 2.0,
  negative 0.5, neutral left out unless ``include_neutral`` (1.0). ``format=openai``:
  OpenAI's chat format (https://platform.openai.com/docs/guides/supervised-fine-tuning),
  where ``weight`` 0/1 sits on assistant messages: the rated answer gets 1, earlier
  assistant turns 0, negatives are left out, no ``metadata``.
* ``preferences``: TRL's conversational preference records ``{"prompt", "chosen",
  "rejected"}`` (https://huggingface.co/docs/trl/dataset_formats,
  https://huggingface.co/docs/trl/dpo_trainer); ``format=openai``: OpenAI's DPO records
  ``{"input": {"messages"}, "preferred_output", "non_preferred_output"}``
  (https://platform.openai.com/docs/guides/direct-preference-optimization).
* ``kto``: TRL's unpaired preference records ``{"prompt", "completion", "label"}``
  (https://huggingface.co/docs/trl/kto_trainer).
* ``labels``: ``{"input", "label"}`` from label feedback.

Only live items are read (an edit exports its latest version, a retraction nothing), in
``(created_at, id)`` order, in constant memory; the window defaults to the last 7 days.
"""

from feedback_asgi.export.options import (
    DEFAULT_WINDOW,
    ExportFormat,
    ExportKind,
    ExportOptions,
    ExportReport,
    parse_moment,
)
from feedback_asgi.export.stream import export_chunks, write_export

__all__ = [
    "DEFAULT_WINDOW",
    "ExportFormat",
    "ExportKind",
    "ExportOptions",
    "ExportReport",
    "export_chunks",
    "parse_moment",
    "write_export",
]
