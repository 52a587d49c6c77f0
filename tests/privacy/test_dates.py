"""Shifting DA and DT values."""

from __future__ import annotations

import datetime as dt

import pytest

from medlens.privacy.dates import shift_da, shift_dt


def test_shift_da_keeps_intervals() -> None:
    a, b = shift_da("20190314", -400), shift_da("20190320", -400)
    assert a == "20180207"
    days = dt.datetime.strptime(b, "%Y%m%d") - dt.datetime.strptime(a, "%Y%m%d")
    assert days.days == 6


def test_shift_da_across_leap_day() -> None:
    assert shift_da("20200301", -1) == "20200229"


@pytest.mark.parametrize("bad", ["", "2019", "2019.03.14", "20191314", "abcdefgh", "00010101"])
def test_invalid_da_gives_none(bad: str) -> None:
    assert shift_da(bad, -400) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20190314101530.123456+0100", "20180207101530.123456+0100"),
        ("20190314101530-0500", "20180207101530-0500"),
        ("20190314", "20180207"),
        ("201903", "201801"),
        ("2019", "2017"),
    ],
)
def test_shift_dt_keeps_time_zone_and_precision(value: str, expected: str) -> None:
    assert shift_dt(value, -400) == expected


def test_invalid_dt_gives_none() -> None:
    assert shift_dt("2019-03-14", -1) is None
