from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackType
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.feedback.processors import (
    MAX_JSON_DEPTH,
    FeedbackProcessor,
    FeedbackProcessorRegistry,
    ProcessedFeedback,
    ProcessResult,
    RatingProcessor,
    json_problem,
    normalize_comment,
    string_problem,
)

BUILT_INS = ["rating", "thumbs", "text", "correction", "label"]


def registry(**config: Any) -> FeedbackProcessorRegistry:
    return FeedbackProcessorRegistry.with_defaults(FeedbackConfig(**config))


def ok_value(kind: str, payload: Mapping[str, Any], **config: Any) -> Any:
    result = registry(**config).process(kind, payload)
    assert isinstance(result, Ok), result
    return result.value.value


def field_error(kind: object, payload: object, **config: Any) -> dict[str, str]:
    result = registry(**config).process(kind, payload)
    assert isinstance(result, Err), result
    assert isinstance(result.error, FeedbackValidationError)
    return result.error.fields


def nested(depth: int) -> list[Any]:
    """``depth`` lists, each inside the previous one."""
    root: list[Any] = []
    current = root
    for _ in range(depth - 1):
        child: list[Any] = []
        current.append(child)
        current = child
    return root


# registry


def test_with_defaults_registers_the_five_built_ins_in_order() -> None:
    assert registry().kinds() == [FeedbackType(k) for k in BUILT_INS]


def test_empty_registry_knows_no_kind() -> None:
    empty = FeedbackProcessorRegistry(FeedbackConfig())
    assert empty.kinds() == []
    fields = empty.process("rating", {"value": 3})
    assert isinstance(fields, Err)
    assert "none registered" in fields.error.fields["type"]


def test_unknown_kind_lists_the_known_kinds() -> None:
    fields = field_error("stars", {"value": 3})
    assert list(fields) == ["type"]
    for kind in BUILT_INS:
        assert kind in fields["type"]
    assert "'stars'" in fields["type"]


@pytest.mark.parametrize("kind", [None, 3, ["rating"], "Rating", "", "x" * 40])
def test_non_string_or_malformed_kinds_are_errors_on_type(kind: object) -> None:
    assert list(field_error(kind, {"value": 3})) == ["type"]


@pytest.mark.parametrize("payload", [None, 3, "5", [5], (5,)])
def test_a_payload_that_is_not_an_object_is_an_error_on_payload(payload: object) -> None:
    assert list(field_error("rating", payload)) == ["payload"]


def test_custom_kind_with_processor_object() -> None:
    class Preference:
        def process(self, payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
            choice = payload.get("value")
            if choice not in ("a", "b"):
                return Err(FeedbackValidationError.for_field("value", "must be 'a' or 'b'"))
            return Ok(ProcessedFeedback("wrong_kind_is_replaced", choice, {"derived": 1}))

    reg = registry()
    assert isinstance(Preference(), FeedbackProcessor)
    reg.register("preference", Preference())
    assert reg.kinds()[-1] == "preference"
    assert "preference" in reg
    result = reg.process("preference", {"value": "a", "comment": " better "})
    assert result == Ok(ProcessedFeedback("preference", "a", {"derived": 1, "comment": "better"}))
    rejected = reg.process("preference", {"value": "c"})
    assert isinstance(rejected, Err)
    assert rejected.error.fields == {"value": "must be 'a' or 'b'"}


def test_custom_kind_with_plain_function() -> None:
    reg = registry()

    def score(payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        return Ok(ProcessedFeedback("score", payload.get("value")))

    reg.register("score", score)
    assert reg.process("score", {"value": 7}) == Ok(ProcessedFeedback("score", 7, {}))


def test_re_registering_a_built_in_overrides_it() -> None:
    reg = registry()

    def lenient(payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        return Ok(ProcessedFeedback(FeedbackType.RATING, 99.0))

    reg.register(FeedbackType.RATING, lenient)
    assert reg.kinds().count(FeedbackType.RATING) == 1
    assert reg.process("rating", {"value": "anything"}) == Ok(
        ProcessedFeedback(FeedbackType.RATING, 99.0, {})
    )


@pytest.mark.parametrize("kind", ["Bad Name", "1abc", "", "a" * 33])
def test_registering_an_invalid_kind_name_raises_value_error(kind: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        registry().register(kind, RatingProcessor())


def test_registering_something_that_is_not_a_processor_raises_type_error() -> None:
    with pytest.raises(TypeError, match="process"):
        registry().register("thing", 42)  # type: ignore[arg-type]


def test_a_raising_custom_processor_becomes_a_logged_validation_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg = registry()

    def broken(payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        raise KeyError("oops")

    reg.register("broken", broken)
    with caplog.at_level(logging.ERROR, logger="feedback_asgi.feedback.processors"):
        result = reg.process("broken", {"value": 1})
    assert isinstance(result, Err)
    assert list(result.error.fields) == ["value"]
    assert any("broken" in r.getMessage() for r in caplog.records)


def test_a_processor_raising_a_validation_error_is_returned_as_err() -> None:
    reg = registry()
    error = FeedbackValidationError.for_field("value.x", "nope")

    def strict(payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        raise error

    reg.register("strict", strict)
    assert reg.process("strict", {"value": 1}) == Err(error)


def test_a_processor_returning_garbage_is_a_validation_error() -> None:
    reg = registry()
    reg.register("garbage", lambda payload, config: "not a result")  # type: ignore[arg-type,return-value]
    result = reg.process("garbage", {"value": 1})
    assert isinstance(result, Err)
    assert list(result.error.fields) == ["value"]


def test_get_returns_none_for_unknown_and_malformed_kinds() -> None:
    reg = registry()
    assert isinstance(reg.get("rating"), RatingProcessor)
    assert reg.get("nope") is None
    assert reg.get("Not Valid") is None
    assert 3 not in reg


# comment


def test_comment_is_stripped_and_blank_means_none() -> None:
    config = FeedbackConfig()
    assert normalize_comment("  fine  ", config) == Ok("fine")
    assert normalize_comment("   ", config) == Ok(None)
    assert normalize_comment(None, config) == Ok(None)


@pytest.mark.parametrize("comment", [3, ["x"], {"a": 1}, True])
def test_non_string_comment_is_an_error_on_comment(comment: object) -> None:
    assert list(field_error("rating", {"value": 3, "comment": comment})) == ["comment"]


def test_comment_longer_than_max_text_length_is_rejected() -> None:
    assert ok_value("rating", {"value": 3, "comment": "x" * 20}, max_text_length=20) == 3.0
    fields = field_error("rating", {"value": 3, "comment": "x" * 21}, max_text_length=20)
    assert "20" in fields["comment"]


def test_comment_lands_in_metadata() -> None:
    result = registry().process("text", {"value": "meh", "comment": " why "})
    assert isinstance(result, Ok)
    assert result.value.metadata == {"comment": "why"}


# rating


@pytest.mark.parametrize("value", [1, 1.0, 3, 4.5, 5, 5.0])
def test_rating_accepts_numbers_in_range_as_float(value: float) -> None:
    stored = ok_value("rating", {"value": value})
    assert stored == float(value)
    assert isinstance(stored, float)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, "number"),
        (False, "number"),
        ("5", "number"),
        (None, "required"),
        ([5], "number"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (-math.inf, "finite"),
        (0.999, "between 1 and 5"),
        (5.0001, "between 1 and 5"),
        (0, "between 1 and 5"),
        (10**400, "between 1 and 5"),
        (-(10**400), "between 1 and 5"),
    ],
)
def test_rating_rejects(value: object, problem: str) -> None:
    fields = field_error("rating", {"value": value})
    assert list(fields) == ["value"]
    assert problem in fields["value"]


def test_rating_range_follows_config() -> None:
    assert ok_value("rating", {"value": 0}, rating_min=0, rating_max=1) == 0.0
    assert ok_value("rating", {"value": 0.5}, rating_min=0, rating_max=1) == 0.5
    fields = field_error("rating", {"value": 2}, rating_min=0, rating_max=1)
    assert "between 0 and 1" in fields["value"]


# thumbs


@pytest.mark.parametrize(
    ("value", "vote"),
    [("up", 1), ("down", -1), ("UP", 1), (" Down ", -1), (1, 1), (-1, -1), (1.0, 1),
     (-1.0, -1), (True, 1), (False, -1)],
)
def test_thumbs_normalises_votes(value: object, vote: int) -> None:
    stored = ok_value("thumbs", {"value": value})
    assert stored == vote
    assert type(stored) is int


@pytest.mark.parametrize("value", ["yes", "", 0, 2, -2, 0.5, [1], {"up": True}, math.nan])
def test_thumbs_rejects_other_values(value: object) -> None:
    assert list(field_error("thumbs", {"value": value})) == ["value"]


def test_thumbs_null_needs_a_non_empty_comment() -> None:
    assert ok_value("thumbs", {"value": None, "comment": "unsure"}) is None
    assert ok_value("thumbs", {"comment": "missing value counts as null"}) is None
    for comment in (None, "", "   "):
        fields = field_error("thumbs", {"value": None, "comment": comment})
        assert "comment" in fields["value"]


# text


def test_text_is_stripped_and_kept() -> None:
    assert ok_value("text", {"value": "  too long  "}) == "too long"


@pytest.mark.parametrize("value", ["", "   \n\t", None, 3, ["a"]])
def test_text_rejects_blank_and_non_strings(value: object) -> None:
    assert list(field_error("text", {"value": value})) == ["value"]


def test_text_length_limit_counts_characters() -> None:
    assert ok_value("text", {"value": "é" * 10}, max_text_length=10) == "é" * 10
    assert "10" in field_error("text", {"value": "é" * 11}, max_text_length=10)["value"]


@pytest.mark.parametrize("text", ["nul\x00byte", "lone \ud800 surrogate"])
def test_text_rejects_strings_databases_cannot_store(text: str) -> None:
    assert list(field_error("text", {"value": text})) == ["value"]
    assert list(field_error("rating", {"value": 3, "comment": text})) == ["comment"]


# correction


def test_correction_keeps_both_strings_as_given() -> None:
    value = {"original": "2 + 2 = 5 ", "corrected": "2 + 2 = 4"}
    assert ok_value("correction", {"value": value}) == value


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("just a string", "value"),
        (None, "value"),
        ({"original": "a"}, "value.corrected"),
        ({"corrected": "a"}, "value.original"),
        ({"original": "a", "corrected": "a"}, "value.corrected"),
        ({"original": 1, "corrected": "a"}, "value.original"),
        ({"original": "a", "corrected": None}, "value.corrected"),
        ({"original": "a", "corrected": "  "}, "value.corrected"),
        ({"original": "a", "corrected": "b", "extra": 1}, "value"),
    ],
)
def test_correction_rejects(value: object, field: str) -> None:
    assert list(field_error("correction", {"value": value})) == [field]


def test_correction_size_limits() -> None:
    long = "x" * 11
    assert list(
        field_error("correction", {"value": {"original": long, "corrected": "y"}},
                    max_text_length=10)
    ) == ["value.original"]
    assert list(
        field_error("correction", {"value": {"original": "y", "corrected": long}},
                    max_text_length=10)
    ) == ["value.corrected"]


def test_correction_original_may_be_empty() -> None:
    assert ok_value("correction", {"value": {"original": "", "corrected": "x"}}) == {
        "original": "",
        "corrected": "x",
    }


# label


@pytest.mark.parametrize(
    "label", ["spam", 3, 2.5, True, ["a", "b"], {"class": "cat", "score": [1, 2]}]
)
def test_label_accepts_any_json_value(label: object) -> None:
    value = {"label": label, "input": {"text": "hello"}}
    assert ok_value("label", {"value": value}) == value


def test_label_input_is_optional() -> None:
    assert ok_value("label", {"value": {"label": "x"}}) == {"label": "x", "input": None}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("spam", "value"),
        ({"input": 1}, "value.label"),
        ({"label": None}, "value.label"),
        ({"label": {1: "int key"}}, "value.label"),
        ({"label": math.nan}, "value.label"),
        ({"label": [math.inf]}, "value.label"),
        ({"label": object()}, "value.label"),
        ({"label": (1, 2)}, "value.label"),
        ({"label": 10**5000}, "value.label"),
        ({"label": nested(MAX_JSON_DEPTH + 1)}, "value.label"),
        ({"label": nested(100_000)}, "value.label"),
        ({"label": "x", "input": {"k": {2: 3}}}, "value.input"),
        ({"label": "x", "other": 1}, "value"),
    ],
)
def test_label_rejects(value: object, field: str) -> None:
    assert list(field_error("label", {"value": value})) == [field]


def test_label_size_is_measured_as_json_bytes() -> None:
    # "é" is 2 UTF-8 bytes: a 5-char label is 12 bytes as JSON with its quotes
    assert ok_value("label", {"value": {"label": "é" * 5}}, max_label_bytes=12)
    fields = field_error("label", {"value": {"label": "é" * 5}}, max_label_bytes=11)
    assert "12 bytes" in fields["value.label"]
    fields = field_error(
        "label", {"value": {"label": "a", "input": ["x"] * 10}}, max_label_bytes=20
    )
    assert list(fields) == ["value.input"]


# helpers


def test_json_problem_accepts_json_and_names_what_is_wrong() -> None:
    assert json_problem({"a": [1, 2.5, "x", None, True, {"b": []}]}) is None
    assert json_problem(nested(MAX_JSON_DEPTH)) is None
    assert "deeper" in (json_problem(nested(MAX_JSON_DEPTH + 1)) or "")
    assert "string keys" in (json_problem({("t",): 1}) or "")
    assert "set" in (json_problem({1, 2}) or "")
    assert json_problem("x" * 10, max_bytes=12) is None
    assert "bytes" in (json_problem("x" * 11, max_bytes=12) or "")


def test_string_problem() -> None:
    assert string_problem("fine ✓") is None
    assert string_problem("a\x00b") is not None
    assert string_problem("\udfff") is not None


# property: any JSON-ish payload gives Ok or a field-naming validation error

_KEYS = st.one_of(st.text(max_size=8), st.integers(), st.sampled_from(["value", "comment"]))
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**6000), max_value=10**6000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["up", "down", "UP", " ", "\x00", "\ud800"]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_KEYS, children, max_size=4),
        st.tuples(children),
    ),
    max_leaves=20,
)
_VALUE = st.one_of(
    _JSON,
    st.fixed_dictionaries({"original": _JSON, "corrected": _JSON}),
    st.fixed_dictionaries({"label": _JSON}, optional={"input": _JSON}),
)
_PAYLOAD = st.one_of(
    _JSON,
    st.fixed_dictionaries({"value": _VALUE}, optional={"comment": _JSON}),
)
_KIND = st.one_of(st.sampled_from(BUILT_INS), st.text(max_size=10), st.none(), st.integers())


def _assert_ok_or_field_error(result: ProcessResult, kind: object) -> None:
    match result:
        case Ok(ProcessedFeedback() as processed):
            assert processed.kind == kind
            # whatever was accepted can be stored as JSON, exactly
            assert json_problem(processed.value) is None
            assert json.loads(json.dumps(processed.value)) == processed.value
        case Err(FeedbackValidationError() as error):
            assert error.fields, error
            for name, problem in error.fields.items():
                assert name in {"type", "payload", "comment"} or name.startswith("value")
                assert problem
                assert name in error.message
        case _:
            pytest.fail(f"not a Result: {result!r}")


@settings(max_examples=300, deadline=None)
@given(kind=_KIND, payload=_PAYLOAD)
def test_any_payload_into_the_registry_gives_ok_or_a_field_error(
    kind: object, payload: object
) -> None:
    _assert_ok_or_field_error(registry().process(kind, payload), kind)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(BUILT_INS), payload=_PAYLOAD)
def test_every_built_in_processor_never_raises(kind: str, payload: object) -> None:
    _assert_ok_or_field_error(registry().process(kind, payload), kind)


@settings(max_examples=200, deadline=None)
@given(value=_VALUE, comment=_JSON)
def test_each_processor_called_directly_never_raises(value: object, comment: object) -> None:
    reg = registry()
    config = reg.config
    for kind in BUILT_INS:
        processor = reg.get(kind)
        assert processor is not None
        result = processor.process({"value": value, "comment": comment}, config)
        assert isinstance(result, Ok | Err)
        if isinstance(result, Err):
            assert isinstance(result.error, FeedbackValidationError)
            assert result.error.fields
