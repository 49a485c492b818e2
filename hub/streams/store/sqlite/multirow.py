"""Statements that carry many rows at once. Each statement the writer thread runs is a step that
releases the GIL and must take it back from the event loop, which can keep it for up to the switch
interval: so a transaction's blocks go in as multi-row INSERTs and its streams' counters in one
UPDATE … FROM (VALUES …), not a statement (or an executemany step) a row.

A flush of n rows runs n // most full statements, then one for each power of two in the rest, so a
shape has at most log2(most) + 1 statement texts, which sqlite3's statement cache keeps prepared."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any


def statement_sizes(rows: int, most: int) -> list[int]:
    """How many rows each statement of a flush of `rows` rows carries (`most`: a power of two)."""
    full, rest = divmod(rows, most)
    sizes = [most] * full
    bit = most // 2
    while bit:
        if rest & bit:
            sizes.append(bit)
        bit //= 2
    return sizes


class MultiRow:
    """Runs `sql(n)`, a statement for n rows of `width` values, over any number of rows (at most
    `most` a statement); `run` returns the last statement's cursor."""

    def __init__(self, sql: Callable[[int], str], width: int, most: int):
        self.sql, self.width, self.most = sql, width, most
        self._texts: dict[int, str] = {}  # at most log2(most) + 1

    def run(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor | None:
        values = list(chain.from_iterable(rows))
        cursor, start = None, 0
        for size in statement_sizes(len(rows), self.most):
            end = start + size * self.width
            text = self._texts.get(size)
            if text is None:
                text = self._texts[size] = self.sql(size)
            cursor = conn.execute(text, values[start:end])
            start = end
        return cursor


def values_list(width: int, rows: int) -> str:
    """`(?, …), (?, …)`: `rows` rows of `width` placeholders."""
    return ", ".join(["(" + ", ".join("?" * width) + ")"] * rows)
