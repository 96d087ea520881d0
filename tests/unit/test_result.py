from __future__ import annotations

import pytest

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.result import Err, Ok, Result


def describe(result: Result[int, str]) -> str:
    match result:
        case Ok(value):
            return f"ok {value}"
        case Err(error):
            return f"err {error}"


def test_pattern_matching_reaches_each_arm() -> None:
    assert describe(Ok(3)) == "ok 3"
    assert describe(Err("boom")) == "err boom"


def test_ok_accessors() -> None:
    ok: Ok[int] = Ok(2)
    assert ok.is_ok()
    assert not ok.is_err()
    assert ok.unwrap() == 2
    assert ok.unwrap_or(9) == 2
    assert ok.map(lambda v: v * 10) == Ok(20)


def test_err_accessors_and_unwrap_raises_the_exception_itself() -> None:
    error = FeedbackValidationError.for_field("value", "bad")
    err = Err(error)
    assert err.is_err()
    assert not err.is_ok()
    assert err.unwrap_or(5) == 5
    assert err.map(lambda v: v) is err
    with pytest.raises(FeedbackValidationError) as caught:
        err.unwrap()
    assert caught.value is error


def test_err_with_a_non_exception_raises_value_error() -> None:
    with pytest.raises(ValueError, match="boom"):
        Err("boom").unwrap()
