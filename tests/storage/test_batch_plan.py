"""plan_batch: the write-batch rules both SQL stores share."""

from __future__ import annotations

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.storage.batch_plan import plan_batch


def thumbs(item_id: str, supersedes: str | None = None) -> FeedbackItem:
    return FeedbackItem(FeedbackType.THUMBS, 1, id=item_id, supersedes=supersedes)


def test_a_successor_in_the_batch_takes_its_targets_liveness_and_root() -> None:
    plan = plan_batch([thumbs("a"), thumbs("b", "a"), thumbs("c", "s")], {"s": "root-s"}, set(),
                      atomic=True)
    assert plan.errors == [None, None, None]
    assert not plan.stopped
    assert plan.rows["a"]["is_live"] is False
    assert plan.rows["b"]["root_id"] == "a"
    assert plan.rows["c"]["root_id"] == "root-s"
    assert plan.stored_targets == ["s"]


def test_refused_items_stop_an_atomic_batch_and_are_skipped_otherwise() -> None:
    items = [thumbs("a"), thumbs("a"), thumbs("b", "gone"), thumbs("c", "t"), thumbs("d", "t")]
    taken = {"t"}
    atomic = plan_batch(items, {"t": "t"}, set(taken), atomic=True)
    assert atomic.stopped
    assert atomic.errors[0] is None
    assert isinstance(atomic.errors[1], FeedbackValidationError)
    assert len(atomic.errors) == 2

    lenient = plan_batch(items, {"t": "t"}, set(), atomic=False)
    fields = [next(iter(e.fields)) if isinstance(e, FeedbackValidationError) else None
              for e in lenient.errors]
    assert fields == [None, "id", "supersedes", None, "supersedes"]
    assert list(lenient.rows) == ["a", "c"]
    assert lenient.stored_targets == ["t"]
