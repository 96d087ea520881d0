"""One vote per submitter and idempotent retries, on the in-memory store's semantics."""

from __future__ import annotations

import asyncio

from feedback_asgi.core.exceptions import FeedbackError, StorageUnavailableError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.feedback.votes import (
    IDEMPOTENCY_METADATA_KEY,
    fingerprint,
    keyed_id,
    save_vote,
    valid_idempotency_key,
    vote_slot_id,
)
from feedback_asgi.storage.memory import MemoryFeedbackStore

KEY = b"id-key-of-this-test"


def saver(store: MemoryFeedbackStore, value: int, key: str | None = None):  # type: ignore[no-untyped-def]
    metadata = {IDEMPOTENCY_METADATA_KEY: fingerprint(key)} if key else {}

    async def save(item_id: str, supersedes: str | None) -> Result[FeedbackItem, FeedbackError]:
        item = FeedbackItem("thumbs", value, {"trace_id": "t"}, dict(metadata), id=item_id,
                            supersedes=supersedes)
        await asyncio.sleep(0)  # let concurrent votes interleave
        match await store.save(item):
            case Ok(_):
                return Ok(item)
            case Err(error):
                return Err(error)
        raise AssertionError

    return save


async def vote(store: MemoryFeedbackStore, value: int, key: str | None = None):  # type: ignore[no-untyped-def]
    key_fp = fingerprint(key) if key else None
    return await save_vote(
        store,
        saver(store, value, key),
        slot_id=vote_slot_id("t", "thumbs", "alice", key=KEY),
        request_id=keyed_id("t", "alice", key_fp, key=KEY) if key_fp else None,
        key_fingerprint=key_fp,
    )


def test_ids_are_deterministic_and_distinct() -> None:
    assert vote_slot_id("t", "thumbs", "a", key=KEY) == vote_slot_id("t", "thumbs", "a", key=KEY)
    assert vote_slot_id("t", "thumbs", "a", key=KEY) != vote_slot_id("t", "rating", "a", key=KEY)
    assert vote_slot_id("t", "thumbs", "a", key=KEY) != vote_slot_id("t", "thumbs", "b", key=KEY)
    assert keyed_id("t", "a", "k", key=KEY) != keyed_id("t", "a", "k2", key=KEY)
    # without the key nobody computes them: another key, other ids
    assert vote_slot_id("t", "thumbs", "a", key=b"other") != vote_slot_id("t", "thumbs", "a", key=KEY)
    assert keyed_id("t", "a", "k", key=b"other") != keyed_id("t", "a", "k", key=KEY)
    assert fingerprint("secret-session") != "secret-session"
    assert len(fingerprint("x")) == 32


def test_key_syntax() -> None:
    assert valid_idempotency_key("a" * 255)
    assert not valid_idempotency_key("")
    assert not valid_idempotency_key("a" * 256)
    assert not valid_idempotency_key("has space")
    assert not valid_idempotency_key("caf\u00e9")


async def test_second_vote_supersedes_the_first() -> None:
    store = MemoryFeedbackStore()
    first = (await vote(store, 1)).unwrap()
    second = (await vote(store, -1)).unwrap()
    assert first.feedback_id == vote_slot_id("t", "thumbs", "alice", key=KEY)
    assert second.feedback_id != first.feedback_id
    live = await store.find_by_trace("t")
    assert [(i.id, i.value, i.supersedes) for i in live] == [
        (second.feedback_id, -1, first.feedback_id)
    ]


async def test_same_key_replays_first_answer_for_first_and_later_votes() -> None:
    store = MemoryFeedbackStore()
    first = (await vote(store, 1, key="k1")).unwrap()
    again = (await vote(store, 1, key="k1")).unwrap()
    assert (again.feedback_id, again.replayed) == (first.feedback_id, True)
    later = (await vote(store, -1, key="k2")).unwrap()
    assert later.feedback_id == keyed_id("t", "alice", fingerprint("k2"), key=KEY)
    # a retry of the first request after the vote changed still gets the first answer
    assert (await vote(store, 1, key="k1")).unwrap().feedback_id == first.feedback_id
    assert (await vote(store, -1, key="k2")).unwrap() == type(later)(later.feedback_id, True)
    assert len(await store.find_by_trace("t", include_history=True)) == 2


async def test_concurrent_votes_leave_one_chain() -> None:
    store = MemoryFeedbackStore()
    results = await asyncio.gather(*(vote(store, 1 if n % 2 else -1) for n in range(12)))
    assert all(isinstance(r, Ok) for r in results)
    rows = await store.find_by_trace("t", include_history=True)
    assert len(rows) == 12
    assert len(await store.find_by_trace("t")) == 1
    chain = await store.history(vote_slot_id("t", "thumbs", "alice", key=KEY))
    assert len(chain) == 12  # one linear chain: no vote lost, none forked


async def test_concurrent_duplicates_with_one_key_store_one_row() -> None:
    store = MemoryFeedbackStore()
    await vote(store, 1)  # an earlier vote, so the keyed ones race on `supersedes`
    results = await asyncio.gather(*(vote(store, -1, key="same") for _ in range(8)))
    ids = {r.unwrap().feedback_id for r in results}
    assert ids == {keyed_id("t", "alice", fingerprint("same"), key=KEY)}
    assert sum(not r.unwrap().replayed for r in results) == 1
    assert len(await store.find_by_trace("t", include_history=True)) == 2


async def test_other_errors_pass_through() -> None:
    store = MemoryFeedbackStore()

    async def down(item_id: str, supersedes: str | None) -> Result[FeedbackItem, FeedbackError]:
        return Err(StorageUnavailableError("down"))

    result = await save_vote(store, down, slot_id="s", request_id=None, key_fingerprint=None)
    assert isinstance(result, Err)
    assert isinstance(result.error, StorageUnavailableError)
