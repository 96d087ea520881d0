from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_asgi.core.records import (
    CORRELATION_KEYS,
    Exchange,
    FeedbackItem,
    FeedbackSummary,
    FeedbackType,
    normalize_kind,
    utc_now,
)

# FeedbackType and kinds


def test_built_in_kinds_are_str_enum_members() -> None:
    assert [str(k) for k in FeedbackType] == ["rating", "thumbs", "text", "correction", "label"]
    assert FeedbackType.RATING == "rating"
    assert f"{FeedbackType.THUMBS}" == "thumbs"


def test_normalize_kind_turns_built_in_names_into_members() -> None:
    assert normalize_kind("label") is FeedbackType.LABEL
    assert normalize_kind(FeedbackType.TEXT) is FeedbackType.TEXT


@pytest.mark.parametrize("name", ["preference", "a", "pairwise_v2", "x" * 32])
def test_normalize_kind_accepts_custom_identifiers(name: str) -> None:
    assert normalize_kind(name) == name
    assert not isinstance(normalize_kind(name), FeedbackType)


@pytest.mark.parametrize("name", ["", "Preference", "2fast", "has space", "dash-ed", "x" * 33])
def test_normalize_kind_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid feedback kind"):
        normalize_kind(name)


def test_normalize_kind_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        normalize_kind(3)  # type: ignore[arg-type]


def test_correlation_keys_cover_the_context_identifiers() -> None:
    assert {"trace_id", "session_id", "user_id", "model", "provider"} <= set(CORRELATION_KEYS)


# FeedbackItem


def test_item_defaults_are_a_uuid4_and_an_aware_utc_time() -> None:
    before = utc_now()
    item = FeedbackItem(FeedbackType.RATING, 4.0)
    after = utc_now()
    assert uuid.UUID(item.id).version == 4
    assert item.created_at.tzinfo is not None
    assert item.created_at.utcoffset() == timedelta(0)
    assert before <= item.created_at <= after
    assert item.context == {}
    assert item.metadata == {}
    assert item.supersedes is None
    assert item.tombstone is False
    assert FeedbackItem(FeedbackType.RATING, 4.0).id != item.id


def test_item_type_alias_and_string_kinds_become_members() -> None:
    item = FeedbackItem("thumbs", 1)  # type: ignore[arg-type]
    assert item.type is FeedbackType.THUMBS
    assert item.feedback_type is FeedbackType.THUMBS


def test_item_is_frozen() -> None:
    item = FeedbackItem(FeedbackType.TEXT, "hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.value = "changed"  # type: ignore[misc]


def test_item_times_are_normalised_to_utc() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert FeedbackItem(FeedbackType.TEXT, "x", created_at=naive).created_at == naive.replace(
        tzinfo=UTC
    )
    plus_two = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    item = FeedbackItem(FeedbackType.TEXT, "x", created_at=plus_two)
    assert item.created_at.utcoffset() == timedelta(0)
    assert item.created_at.hour == 3


def test_invalid_kind_and_tombstone_without_target_are_rejected() -> None:
    with pytest.raises(ValueError, match="invalid feedback kind"):
        FeedbackItem("Not OK", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="supersedes"):
        FeedbackItem(FeedbackType.TEXT, None, tombstone=True)


def test_trace_id_and_comment_properties() -> None:
    item = FeedbackItem(
        FeedbackType.RATING, 2.0, context={"trace_id": "t-1"}, metadata={"comment": "meh"}
    )
    assert (item.trace_id, item.comment) == ("t-1", "meh")
    odd = FeedbackItem(FeedbackType.RATING, 2.0, context={"trace_id": 5}, metadata={"comment": 1})
    assert (odd.trace_id, odd.comment) == (None, None)


def test_evolve_keeps_the_id_unless_told() -> None:
    item = FeedbackItem(FeedbackType.RATING, 2.0)
    changed = item.evolve(value=3.0)
    assert (changed.id, changed.value, item.value) == (item.id, 3.0, 2.0)
    assert item.evolve(id="other").id == "other"


def test_items_hash_by_id() -> None:
    item = FeedbackItem(FeedbackType.RATING, 2.0)
    assert len({item, item.evolve(), FeedbackItem(FeedbackType.RATING, 2.0)}) == 2


def test_to_dict_is_json_ready_with_iso_timestamp() -> None:
    item = FeedbackItem(
        FeedbackType.CORRECTION,
        {"original": "a", "corrected": "b"},
        context={"trace_id": "t"},
        metadata={"comment": "fix"},
        created_at=datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
    )
    data = item.to_dict()
    assert data == {
        "id": item.id,
        "feedback_type": "correction",
        "value": {"original": "a", "corrected": "b"},
        "context": {"trace_id": "t"},
        "metadata": {"comment": "fix"},
        "created_at": "2026-03-04T05:06:07.890123+00:00",
        "supersedes": None,
        "tombstone": False,
    }
    assert type(data["feedback_type"]) is str
    json.dumps(data)


def test_from_dict_round_trips_exactly_including_history_fields() -> None:
    first = FeedbackItem(FeedbackType.THUMBS, -1, context={"session_id": "s"})
    retraction = FeedbackItem(FeedbackType.THUMBS, None, supersedes=first.id, tombstone=True)
    for item in (first, retraction):
        again = FeedbackItem.from_dict(item.to_dict())
        assert again == item
        assert again.created_at == item.created_at
        assert again.to_dict() == item.to_dict()


def test_from_dict_accepts_type_and_datetime_objects() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    item = FeedbackItem.from_dict({"type": "text", "value": "x", "created_at": moment})
    assert item.feedback_type is FeedbackType.TEXT
    assert item.created_at == moment


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"value": 1}, "feedback_type"),
        ({"feedback_type": "text", "context": ["x"]}, "context"),
        ({"feedback_type": "text", "metadata": "x"}, "metadata"),
        ({"feedback_type": "text", "created_at": "yesterday"}, "created_at"),
        ({"feedback_type": "text", "created_at": 12}, "created_at"),
        ({"feedback_type": "Bad Kind"}, "invalid feedback kind"),
    ],
)
def test_from_dict_rejects_malformed_data(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeedbackItem.from_dict(data)


def test_custom_kinds_round_trip() -> None:
    item = FeedbackItem("preference", {"chosen": "a", "rejected": "b"})  # type: ignore[arg-type]
    again = FeedbackItem.from_dict(json.loads(json.dumps(item.to_dict())))
    assert again == item
    assert again.feedback_type == "preference"


_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=15,
)
_KINDS = st.one_of(
    st.sampled_from(list(FeedbackType)), st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
)
_ITEMS = st.builds(
    FeedbackItem,
    feedback_type=_KINDS,
    value=_JSON,
    context=st.dictionaries(st.text(max_size=10), _JSON, max_size=4),
    metadata=st.dictionaries(st.text(max_size=10), _JSON, max_size=4),
    id=st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=40)),
    created_at=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))]),
    ),
    supersedes=st.one_of(st.none(), st.uuids().map(str)),
)


@settings(max_examples=200, deadline=None)
@given(item=_ITEMS)
def test_item_round_trip_property(item: FeedbackItem) -> None:
    assert FeedbackItem.from_dict(item.to_dict()) == item
    through_json = FeedbackItem.from_dict(json.loads(json.dumps(item.to_dict())))
    assert through_json == item
    assert through_json.created_at == item.created_at
    assert through_json.to_dict() == item.to_dict()


# FeedbackSummary


def test_summary_thumbs_up_rate() -> None:
    assert FeedbackSummary().thumbs_up_rate is None
    summary = FeedbackSummary(5, 3.5, {"rating": 2, "thumbs": 3}, thumbs_up=2, thumbs_down=1)
    assert summary.thumbs_up_rate == pytest.approx(2 / 3)
    assert summary.to_dict() == {
        "total_count": 5,
        "average_rating": 3.5,
        "count_by_type": {"rating": 2, "thumbs": 3},
        "thumbs_up": 2,
        "thumbs_down": 1,
        "thumbs_up_rate": pytest.approx(2 / 3),
    }
    assert FeedbackSummary(thumbs_down=4).thumbs_up_rate == 0.0


# Exchange


def test_exchange_round_trip_and_correlation() -> None:
    exchange = Exchange(
        trace_id="t-1",
        session_id="s",
        model="alpha",
        input={"prompt": "hi"},
        output="hello",
        status=200,
        latency_ms=12.5,
        input_truncated=True,
        metadata={"route": "/chat"},
        created_at=datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC),
    )
    data = exchange.to_dict()
    assert data["created_at"] == "2026-05-06T07:08:09+00:00"
    json.dumps(data)
    assert Exchange.from_dict(json.loads(json.dumps(data))) == exchange
    assert exchange.correlation() == {
        "trace_id": "t-1",
        "session_id": "s",
        "model": "alpha",
        "input": {"prompt": "hi"},
        "output": "hello",
    }


def test_exchange_from_dict_ignores_unknown_keys_and_needs_a_trace_id() -> None:
    exchange = Exchange.from_dict({"trace_id": "t", "future_field": 1})
    assert exchange.trace_id == "t"
    assert exchange.created_at.tzinfo is not None
    with pytest.raises(ValueError, match="trace_id"):
        Exchange.from_dict({"model": "m"})
    with pytest.raises(ValueError, match="trace_id"):
        Exchange.from_dict({"trace_id": 5})


@pytest.mark.parametrize("field", ["context", "metadata"])
@pytest.mark.parametrize("bad", [[], "", 0, [("a", 1)]])
def test_from_dict_rejects_non_object_context_and_metadata(field: str, bad: object) -> None:
    data = FeedbackItem(FeedbackType.TEXT, "hi").to_dict()
    data[field] = bad
    with pytest.raises(ValueError, match="must be objects"):
        FeedbackItem.from_dict(data)
