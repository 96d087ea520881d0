"""One vote per person and response, and idempotent retries, held by the database's keys.

No lock, no cache and no extra table: item ids are derived deterministically, so the
store's primary key and its UNIQUE ``supersedes`` column settle every race, across
worker processes and after a lost response.

* The first vote of a submitter on a trace, for one kind, gets the *slot* id
  ``derived(trace, kind, submitter)``. The common case is therefore one insert, no read.
* When the slot exists, the new vote supersedes the chain's latest version; its id is
  ``derived(trace, submitter, Idempotency-Key)`` when the request has a key, else random.

Derived ids are UUID-shaped (version 8, RFC 9562): 122 bits of a keyed BLAKE2b digest of
the inputs, the same in every process that holds the key (derived from the secret that
signed the vote's token, :meth:`~feedback_asgi.core.tokens.TokenSigner.id_key`), and not
computable by anyone without it, so nobody can name, read or race another person's vote.
  Two concurrent votes name the same predecessor: UNIQUE ``supersedes`` rejects one, which
  re-reads the chain and tries again.
* A retry with the same key finds its earlier row (by the derived id, or the key's
  fingerprint on the slot row) and gets the first answer back; nothing new is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.storage.base import FeedbackStoreProtocol

__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "SUBMITTER_METADATA_KEY",
    "SaveAttempt",
    "Saved",
    "derived_id",
    "fingerprint",
    "keyed_id",
    "save_vote",
    "valid_idempotency_key",
    "vote_slot_id",
]

IDEMPOTENCY_METADATA_KEY = "idempotency_key"
"""Item metadata key holding the fingerprint of the request's ``Idempotency-Key``."""
SUBMITTER_METADATA_KEY = "submitter"
"""Item metadata key naming who submitted the item: the token's keyed subject digest,
``"anonymous"`` or ``"server"``."""

_PERSON = b"feedback-asgi id"
_VARIANT = "89ab89ab89ab89ab"  # RFC 9562 variant bits over the digest's nibble
_MAX_ATTEMPTS = 16
_BACKOFF_SECONDS = 0.002

SaveAttempt = Callable[[str, str | None], Awaitable[Result[FeedbackItem, FeedbackError]]]
"""``save(item_id, supersedes)``: builds and stores the item, e.g. through the collector."""


@dataclass(frozen=True, slots=True)
class Saved:
    """The outcome of :func:`save_vote`: the item's id, and whether it was stored earlier."""

    feedback_id: str
    replayed: bool


def fingerprint(value: str) -> str:
    """A stable, non-reversible short form of an identity or key (32 hex characters)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def valid_idempotency_key(value: str) -> bool:
    """1-255 visible ASCII characters, as the IETF draft and common APIs allow."""
    return 0 < len(value) <= 255 and all(32 < ord(char) < 127 for char in value)


def derived_id(name: str, *, key: bytes) -> str:
    """A deterministic UUID-shaped id (version 8) for ``name`` under ``key`` (at most 64
    bytes; ``b""`` makes ids anyone can compute, for tests and tools only).

    A third of the cost of ``uuid5``: one BLAKE2b digest formatted directly, no UUID object.
    """
    digest = hashlib.blake2b(
        name.encode(), digest_size=16, key=key, person=_PERSON
    ).hexdigest()
    return (
        f"{digest[:8]}-{digest[8:12]}-8{digest[13:16]}-"
        f"{_VARIANT[int(digest[16], 16)]}{digest[17:20]}-{digest[20:]}"
    )


def vote_slot_id(trace_id: str, kind: str, submitter: str, *, key: bytes) -> str:
    """The id of a submitter's first vote of ``kind`` on ``trace_id``."""
    return derived_id(f"vote\x00{trace_id}\x00{kind}\x00{submitter}", key=key)


def keyed_id(trace_id: str, submitter: str, key_fingerprint: str, *, key: bytes) -> str:
    """The id of a later vote sent with an ``Idempotency-Key``."""
    return derived_id(f"key\x00{trace_id}\x00{submitter}\x00{key_fingerprint}", key=key)


def _is_conflict(error: FeedbackError) -> bool:
    return isinstance(error, FeedbackValidationError) and bool(
        {"id", "supersedes"} & error.fields.keys()
    )


async def save_vote(
    store: FeedbackStoreProtocol,
    save: SaveAttempt,
    *,
    slot_id: str,
    request_id: str | None,
    key_fingerprint: str | None,
) -> Result[Saved, FeedbackError]:
    """Store a vote once per submitter (superseding their earlier one) and once per key.

    ``request_id`` is :func:`keyed_id` when the request has an ``Idempotency-Key``.
    Errors other than id/supersedes conflicts come back unchanged. Reads that fail with
    :class:`StorageUnavailableError` become ``Err`` too.
    """
    first = await save(slot_id, None)
    if isinstance(first, Ok):
        return Ok(Saved(first.value.id, replayed=False))
    if not _is_conflict(first.error):
        return Err(first.error)
    try:
        for attempt in range(_MAX_ATTEMPTS):
            if attempt:
                # jittered backoff, so racing votes on one response do not collide in lockstep
                await asyncio.sleep(random.uniform(0, _BACKOFF_SECONDS * attempt))
            if request_id is not None:
                earlier = await store.get(request_id)
                if earlier is not None:
                    return Ok(Saved(earlier.id, replayed=True))
            chain = await store.history(slot_id)
            if not chain:
                return Err(first.error)
            if (
                key_fingerprint is not None
                and chain[0].metadata.get(IDEMPOTENCY_METADATA_KEY) == key_fingerprint
            ):
                return Ok(Saved(chain[0].id, replayed=True))
            result = await save(request_id or str(uuid.uuid4()), chain[-1].id)
            if isinstance(result, Ok):
                return Ok(Saved(result.value.id, replayed=False))
            if not _is_conflict(result.error):
                return Err(result.error)
    except StorageUnavailableError as exc:
        return Err(exc)
    return Err(StorageUnavailableError("too many concurrent votes on this response; retry"))
