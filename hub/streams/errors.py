"""The stream domain's error for bad client input, raised where the input enters and mapped once to
the wire by each adapter (a SignalR Completion error, an HTTP 400 with a JSON body)."""

from __future__ import annotations


class ValidationError(ValueError):
    """Bad client input. str() is `<path>: <problem>`, e.g. `events[3].timestamp: expected an
    integer of nanoseconds`."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
