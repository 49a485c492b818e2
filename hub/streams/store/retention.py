"""Retention: how much data a store keeps per stream, by age and/or by count.

`--retention` text, parsed here and nowhere else:
- `7d`, `12h`, `30m`, `90s`, `2w`: keep what *arrived* within that long (arrival time, not the event's
  own timestamp: a device with a wrong clock must not have its data dropped at once);
- `100000`: keep the newest 100,000 events and the newest 100,000 parameter rows of each stream;
- `7d,100000` (either order): both limits, whichever removes more.

Trimming is approximate, as Redis' `MAXLEN ~`: a store may keep somewhat more than the limit for a
while (it trims in passes), never less. Counters (`events`, `parameterRows`) count what was written,
not what is still kept.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"(\d+)([smhdw])")


@dataclass(slots=True, frozen=True)
class Retention:
    max_age: float | None = None  # seconds since arrival
    max_count: int | None = None  # items per stream and kind

    @property
    def enabled(self) -> bool:
        return self.max_age is not None or self.max_count is not None

    def __str__(self) -> str:
        parts = []
        if self.max_age is not None:
            parts.append(f"{self.max_age:g}s")
        if self.max_count is not None:
            parts.append(str(self.max_count))
        return ",".join(parts) or "keep everything"


KEEP_EVERYTHING = Retention()


def parse_retention(text: str | None) -> Retention:
    """`None`/empty -> keep everything. Raises ValueError with a message naming what was wrong."""
    if text is None or not text.strip():
        return KEEP_EVERYTHING
    max_age: float | None = None
    max_count: int | None = None
    for part in (p.strip().lower() for p in text.split(",")):
        if part.isdigit():
            if max_count is not None:
                raise ValueError(f"retention {text!r}: more than one count")
            max_count = int(part)
            if max_count < 1:
                raise ValueError(f"retention {text!r}: the count must be at least 1")
            continue
        match = _AGE.fullmatch(part)
        if match is None:
            raise ValueError(
                f"retention {text!r}: {part!r} is neither an age (a number and s, m, h, d or w, e.g. 7d)"
                " nor a count (e.g. 100000); combine them as 7d,100000"
            )
        if max_age is not None:
            raise ValueError(f"retention {text!r}: more than one age")
        max_age = float(int(match.group(1)) * _UNITS[match.group(2)])
        if max_age <= 0:
            raise ValueError(f"retention {text!r}: the age must be positive")
    return Retention(max_age, max_count)


async def trim_every(store: Any, interval: float) -> None:
    """Call `store.trim()` every `interval` seconds until cancelled (a failed pass is logged and
    retried at the next one)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await store.trim()
        except Exception as error:  # noqa: BLE001
            logging.getLogger("hub.store").warning("retention pass failed: %s", error)
