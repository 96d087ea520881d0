"""Derived vote ids: UUID-shaped, deterministic across processes, distinct per input."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback_asgi.feedback.votes import derived_id, keyed_id, vote_slot_id


@given(st.text(max_size=300))
def test_derived_ids_are_valid_uuid_strings(name: str) -> None:
    try:
        value = derived_id(name, key=b"k")
    except UnicodeEncodeError:  # a lone surrogate, refused as uuid5 refused it
        with pytest.raises(UnicodeEncodeError):
            uuid.uuid5(uuid.NAMESPACE_URL, name)
        return
    parsed = uuid.UUID(value)
    assert str(parsed) == value
    assert parsed.version == 8
    assert parsed.variant == uuid.RFC_4122


def test_ids_are_the_same_in_another_process() -> None:
    code = (
        "from feedback_asgi.feedback.votes import vote_slot_id, keyed_id;"
        "print(vote_slot_id('trace-1', 'thumbs', 'alice', key=b'k'),"
        " keyed_id('trace-1', 'alice', 'k', key=b'k'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [vote_slot_id("trace-1", "thumbs", "alice", key=b"k"),
                   keyed_id("trace-1", "alice", "k", key=b"k")]


def test_ids_differ_per_input_and_per_purpose() -> None:
    ids = {
        vote_slot_id(trace, kind, who, key=b"k")
        for trace in ("t1", "t2", "t3")
        for kind in ("thumbs", "rating", "text")
        for who in ("alice", "bob", "anonymous")
    }
    assert len(ids) == 27
    keyed = {keyed_id(trace, who, key, key=b"k") for trace in ("t1", "t2") for who in ("a", "b")
             for key in ("k1", "k2")}
    assert len(keyed) == 8
    assert not ids & keyed
    # the separators keep fields apart
    assert vote_slot_id("t", "thumbs", "a", key=b"k") != vote_slot_id("t\x00thumbs", "", "a",
                                                                    key=b"k")
