"""Which rows of a write batch can be inserted: shared by the SQLAlchemy and Django stores.

Pure code over the batch and what the database already holds: a row is refused when its id
repeats one in the batch, when it supersedes an item that is unknown or already superseded
(in the batch or in the database). Each accepted successor takes its target's ``is_live``:
a target in the batch is marked in its row, a stored one is listed for an UPDATE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from feedback_asgi.core.exceptions import FeedbackError, FeedbackValidationError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.storage.sql.rows import item_to_row

__all__ = ["BatchPlan", "plan_batch"]


@dataclass(slots=True)
class BatchPlan:
    """The outcome of :func:`plan_batch`."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Accepted rows by id, in batch order, ready to insert."""
    stored_targets: list[str] = field(default_factory=list)
    """Ids of stored rows that accepted successors supersede (they lose ``is_live``)."""
    errors: list[FeedbackError | None] = field(default_factory=list)
    """One entry per planned item: ``None`` when accepted, else why not."""
    stopped: bool = False
    """An atomic batch met a refused item: nothing may be written."""


def _accept(
    item: FeedbackItem,
    accepted: Mapping[str, dict[str, Any]],
    stored_roots: Mapping[str, str],
    taken: set[str],
) -> dict[str, Any]:
    if item.id in accepted:
        raise FeedbackValidationError.for_field("id", f"an item with id {item.id} exists")
    root_id = item.id
    target = item.supersedes
    if target is not None:
        if target in taken:
            raise FeedbackValidationError.for_field(
                "supersedes", f"item {target} was already superseded"
            )
        if target in accepted:
            root_id = accepted[target]["root_id"]
        elif target in stored_roots:
            root_id = stored_roots[target]
        else:
            raise FeedbackValidationError.for_field("supersedes", f"no item {target}")
    return item_to_row(item, root_id=root_id, is_live=not item.tombstone)


def plan_batch(
    items: Sequence[FeedbackItem],
    stored_roots: Mapping[str, str],
    taken: set[str],
    *,
    atomic: bool,
) -> BatchPlan:
    """Plan the insert of ``items``.

    ``stored_roots`` maps each stored target of a successor in the batch to its root id;
    ``taken`` holds the stored targets that already have a successor (it is extended).
    With ``atomic``, planning stops at the first refused item (``stopped``).
    """
    plan = BatchPlan()
    for item in items:
        try:
            row = _accept(item, plan.rows, stored_roots, taken)
        except FeedbackValidationError as error:
            plan.errors.append(error)
            if atomic:
                plan.stopped = True
                return plan
            continue
        target = item.supersedes
        if target is not None:
            taken.add(target)
            if target in plan.rows:
                plan.rows[target]["is_live"] = False
            else:
                plan.stored_targets.append(target)
        plan.rows[item.id] = row
        plan.errors.append(None)
    return plan
