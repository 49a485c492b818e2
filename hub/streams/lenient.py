"""A lenient batch: rows of which the bad ones are quarantined instead of failing the batch.

An entry point that takes a batch row by row (a text body of one JSON value a line) decodes it
into LenientRows; StreamService.send_event_rows stores the rows that are events and quarantines
the others (models.QuarantinedRow, with each one's line and reason), and answers a LenientBatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Iterator, NamedTuple


class RawRow(NamedTuple):
    """One row of a lenient batch: its 1-based line, its text, and either the decoded event value
    or `error`, why it could not be decoded."""

    line: int
    raw: str
    value: Any = None
    error: str | None = None


class LenientRows:
    """The rows of a lenient batch as an entry point decoded them; reads as a sequence of RawRow.

    values[i] is row i's decoded value (None where it could not be decoded) and errors maps those
    rows to why. A row's line number and text are worked out only when asked (line_of, raw_of):
    the service asks only for rows it quarantines, so a batch of good rows costs the entry point
    one decoded value a row (bench/RESULTS.md, HTTP NDJSON)."""

    __slots__ = ("errors", "line_of", "raw_of", "values")

    def __init__(
        self, values: list[Any], errors: dict[int, str], line_of: Callable[[int], int], raw_of: Callable[[int], str]
    ) -> None:
        self.values = values
        self.errors = errors
        self.line_of = line_of
        self.raw_of = raw_of

    @classmethod
    def of(cls, rows: Iterable[RawRow]) -> LenientRows:
        rows = list(rows)
        errors = {i: row.error for i, row in enumerate(rows) if row.error is not None}
        return cls([row.value for row in rows], errors, lambda i: rows[i].line, lambda i: rows[i].raw)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int) -> RawRow:
        index = range(len(self.values))[index]  # IndexError, negative indexes
        return RawRow(self.line_of(index), self.raw_of(index), self.values[index], self.errors.get(index))

    def __iter__(self) -> Iterator[RawRow]:
        return (self[i] for i in range(len(self.values)))


@dataclass(slots=True, frozen=True)
class LenientBatch:
    """What a lenient write took at call time (counts final then: validation is synchronous);
    `written` resolves once the events and the quarantined rows are as durable as the store
    promises, and raises StoreUnavailable when they could not be."""

    successful_rows: int
    quarantined_rows: int
    written: Awaitable[None]
