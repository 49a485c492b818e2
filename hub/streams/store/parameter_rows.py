"""Parameter data kept row by row, so that rows can be filtered and paged like events.

A row is its timestamp plus, per section, the values of the names its batch carried (None kept, so
a single batch reads back exactly as written). Section keys are one letter: the sqlite store keeps
one JSON text a row, and millions of rows repeat them.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..models import ParameterData

RowValues = dict[str, dict[str, Any]]  # section key -> name -> value

_SECTIONS = (
    ("n", "numeric_values"),
    ("s", "string_values"),
    ("b", "binary_values"),
    ("t", "tag_values"),
)


def split_rows(data: ParameterData) -> Iterator[tuple[int, RowValues]]:
    """(timestamp, values) for each row of `data`, in order."""
    present = [(key, section) for key, attr in _SECTIONS if (section := getattr(data, attr))]
    for i, timestamp in enumerate(data.timestamps):
        yield timestamp, {key: {name: column[i] for name, column in section.items()} for key, section in present}


def join_rows(rows: Iterable[tuple[int, RowValues]]) -> ParameterData:
    """One ParameterData of the rows; each section holds the union of the rows' names (in order
    of first appearance), None where a row lacks one."""
    timestamps: list[int] = []
    columns: dict[str, dict[str, list[Any]]] = {key: {} for key, _ in _SECTIONS}
    for index, (timestamp, values) in enumerate(rows):
        timestamps.append(timestamp)
        for key, named in values.items():
            section = columns[key]
            for name, value in named.items():
                column = section.get(name)
                if column is None:
                    column = section[name] = [None] * index  # back-fill rows before its first
                column.append(value)
        for section in columns.values():  # forward-fill names this row lacks
            for column in section.values():
                if len(column) <= index:
                    column.append(None)
    return ParameterData(timestamps, *(columns[key] for key, _ in _SECTIONS))
