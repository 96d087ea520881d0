"""A small, typed ``Result`` for expected failures.

``Ok(value)`` and ``Err(error)`` are frozen dataclasses, so they work with ``match``::

    match await store.save(item):
        case Ok(feedback_id):
            ...
        case Err(error):
            ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, NoReturn, TypeAlias, TypeVar

T = TypeVar("T")
E = TypeVar("E")
U = TypeVar("U")

__all__ = ["Err", "Ok", "Result"]


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    """A successful outcome carrying ``value``."""

    value: T

    def is_ok(self) -> Literal[True]:
        """Always ``True``."""
        return True

    def is_err(self) -> Literal[False]:
        """Always ``False``."""
        return False

    def unwrap(self) -> T:
        """Return the value."""
        return self.value

    def unwrap_or(self, default: object) -> T:
        """Return the value (the default is for ``Err``)."""
        return self.value

    def map(self, fn: Callable[[T], U]) -> Ok[U]:
        """Apply ``fn`` to the value."""
        return Ok(fn(self.value))


@dataclass(frozen=True, slots=True)
class Err(Generic[E]):
    """A failed outcome carrying ``error``."""

    error: E

    def is_ok(self) -> Literal[False]:
        """Always ``False``."""
        return False

    def is_err(self) -> Literal[True]:
        """Always ``True``."""
        return True

    def unwrap(self) -> NoReturn:
        """Raise the error if it is an exception, else a ``ValueError`` describing it."""
        if isinstance(self.error, BaseException):
            raise self.error
        raise ValueError(f"called unwrap() on Err({self.error!r})")

    def unwrap_or(self, default: U) -> U:
        """Return ``default``."""
        return default

    def map(self, fn: Callable[[object], object]) -> Err[E]:
        """Return self unchanged."""
        return self


Result: TypeAlias = Ok[T] | Err[E]
