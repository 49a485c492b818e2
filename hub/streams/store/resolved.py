"""An awaitable that is already done: what a store returns when a write was applied at call time.

Cheaper than a Future or a Task on the hot path (no event loop involvement), and it may be awaited
any number of times.
"""

from __future__ import annotations

from typing import Generator, Generic, TypeVar

T = TypeVar("T")


class Resolved(Generic[T]):
    __slots__ = ("_value", "_error")

    def __init__(self, value: T | None = None, error: BaseException | None = None):
        self._value = value
        self._error = error

    @classmethod
    def failed(cls, error: BaseException) -> "Resolved[T]":
        return cls(error=error)

    # Future's way of saying "settled": the SignalR dispatcher answers a settled write at once.
    def done(self) -> bool:
        return True

    def result(self) -> T:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def __await__(self) -> Generator[None, None, T]:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
        yield  # unreachable: makes this a generator, as __await__ must return an iterator
