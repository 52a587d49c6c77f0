"""Shifting DICOM DA and DT values by whole days (times of day are kept).

Shifting every date of a patient by the same number of days keeps every interval (age at
the study, days between studies) while hiding the real calendar dates. Values that are not
valid dates return ``None``: the caller empties them rather than keep something unreadable.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["shift_da", "shift_dt"]

_DT = re.compile(r"^(?P<date>\d{4}|\d{6}|\d{8})((?<=\d{8})\d{2,6}(\.\d{1,6})?)?([+-]\d{4})?$")


def _shift_ymd(text: str, days: int) -> str | None:
    """Shift ``YYYY``, ``YYYYMM`` or ``YYYYMMDD``, keeping the same precision."""
    if len(text) not in (4, 6, 8) or not text.isdigit():
        return None
    padded = text + "0101"[len(text) - 4 :] if len(text) < 8 else text
    try:
        date = dt.date(int(padded[:4]), int(padded[4:6]), int(padded[6:8]))
        shifted = date + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return shifted.strftime("%Y%m%d")[: len(text)] if shifted.year >= 1000 else None


def shift_da(value: str, days: int) -> str | None:
    """Shift a DA value (``YYYYMMDD``); ``None`` if it is not a valid date."""
    value = value.strip()
    return _shift_ymd(value, days) if len(value) == 8 else None


def shift_dt(value: str, days: int) -> str | None:
    """Shift the date part of a DT value ``YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]``."""
    match = _DT.match(value.strip())
    if match is None:
        return None
    shifted = _shift_ymd(match["date"], days)
    return None if shifted is None else shifted + value.strip()[len(match["date"]) :]
