"""parsers/bwtimetable: rclone's --bwlimit syntax, its errors, and which slot holds when."""

from __future__ import annotations

import time

import pytest

from pyclone_docker.parsers.bwtimetable import BwPair, BwTimeSlot, BwTimetable, parse_bwtimetable, set_bwtimetable

K, M = 1024, 1024 * 1024


def _local(day: int, hh: int, mm: int) -> float:
    """Seconds since the epoch of a local time on Go weekday `day` (0 = Sunday) of a fixed week."""
    # 2024-01-07 was a Sunday
    return time.mktime((2024, 1, 7 + day, hh, mm, 30, 0, 0, -1))


def test_single_values():
    assert set_bwtimetable("10M").slots == (BwTimeSlot(0, 0, BwPair(10 * M, 10 * M)),)
    assert set_bwtimetable("512").slots[0].bandwidth == BwPair(512 * K, 512 * K)  # bare = KiB/s
    assert set_bwtimetable("10M:1M").slots[0].bandwidth == BwPair(10 * M, M)
    assert set_bwtimetable("off").slots[0].bandwidth == BwPair(-1, -1)
    assert set_bwtimetable("off:1M").slots[0].bandwidth == BwPair(-1, M)
    assert not set_bwtimetable("off") and not BwTimetable() and set_bwtimetable("1M")
    assert not set_bwtimetable("0")


def test_daily_timetable_as_rclone_documents_it():
    table = set_bwtimetable("08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off")
    assert len(table.slots) == 35  # each time for each of the seven days
    assert table.limit_at(_local(3, 7, 59)).bandwidth == BwPair(-1, -1)  # still last night's "off"
    assert table.limit_at(_local(3, 8, 0)).bandwidth.tx == 512 * K
    assert table.limit_at(_local(3, 12, 30)).bandwidth.tx == 10 * M
    assert table.limit_at(_local(3, 13, 0)).bandwidth.tx == 512 * K
    assert table.limit_at(_local(3, 18, 1)).bandwidth.tx == 30 * M
    assert table.limit_at(_local(3, 23, 59)).bandwidth.tx == -1
    assert table.limit_at(_local(0, 0, 0)).bandwidth.tx == -1  # Sunday midnight: wraps from Saturday


def test_weekday_timetable_wraps_round_the_week():
    table = set_bwtimetable("Mon-00:00,512 Fri-23:59,10M Sat-10:00,1M Sun-20:00,off")
    assert table.limit_at(_local(1, 0, 0)).bandwidth.tx == 512 * K
    assert table.limit_at(_local(4, 12, 0)).bandwidth.tx == 512 * K
    assert table.limit_at(_local(5, 23, 59)).bandwidth.tx == 10 * M
    assert table.limit_at(_local(6, 10, 0)).bandwidth.tx == M
    # Sunday 19:00 is before every slot of the week (it starts on Sunday): the table's LAST slot as
    # written holds, as rclone's LimitAt (here Sun-20:00,off, not Saturday's 1M)
    assert table.limit_at(_local(0, 19, 0)).bandwidth.tx == -1
    assert set_bwtimetable("Mon-10:00,1M Sun-20:00,2M Sat-09:00,3M").limit_at(_local(0, 19, 0)).bandwidth.tx == 3 * M
    assert table.limit_at(_local(0, 20, 0)).bandwidth.tx == -1
    # a single day slot holds all week
    assert set_bwtimetable("Mon-10:00,2M").limit_at(_local(3, 1, 0)).bandwidth.tx == 2 * M


def test_semicolons_full_day_names_and_pairs():
    table = set_bwtimetable("Monday-10:00,10M:1M;sunday-11:00,off")
    assert table.slots == (BwTimeSlot(1, 1000, BwPair(10 * M, M)), BwTimeSlot(0, 1100, BwPair(-1, -1)))


def test_string_form_is_rclones():
    assert str(set_bwtimetable("10M")) == "10Mi"
    assert str(set_bwtimetable("10M:1M")) == "10Mi:1Mi"
    assert str(set_bwtimetable("100B")) == "100B"
    assert str(set_bwtimetable("Mon-10:00,2M")) == "Mon-10:00,2Mi"
    assert str(set_bwtimetable("08:00,512k")).startswith("Sun-08:00,512Ki Mon-08:00,512Ki")


def test_a_flag_is_rounded_as_rclone_prints_it():
    assert parse_bwtimetable("1234567B").slots[0].bandwidth.tx == 1234173  # 1.177Mi
    assert parse_bwtimetable("1234567B", as_flag=False).slots[0].bandwidth.tx == 1234567


@pytest.mark.parametrize(("value", "why"), [
    ("", "empty string"),
    ("bad", "bad suffix 'd'"),
    ("10M:x", "bad suffix 'x'"),
    ("10M:", "empty string"),
    (":1M", "empty string"),
    ("-1M", 'size can\'t be negative "-1"'),
    ("08:00,512k 12:00", 'invalid time/bandwidth specification: "12:00"'),
    ("Mon-25:00,1M", "invalid hour (must be between 00 and 23): 25"),
    ("Foo-10:00,1M", 'invalid weekday: "foo"'),
    ("8:00,1M", 'invalid time specification (hh:mm): "8:00"'),
    ("Mon-Tue-10:00,1M", 'invalid time specification: "Mon-Tue-10:00"'),
    ("xx:00,1M", 'invalid hour in time specification "xx:00": strconv.Atoi: parsing "xx": invalid syntax'),
    ("10:7x,1M", 'invalid minute in time specification: "10:7x": strconv.Atoi: parsing "7x": invalid syntax'),
    ("10:60,1M", "invalid minute (must be between 00 and 59): 60"),
    ("1,2", 'invalid time specification (hh:mm): "1"'),
    ("08:00,1x", "bad suffix 'x'"),
])
def test_errors_are_rclones(value, why):
    with pytest.raises(ValueError) as err:
        parse_bwtimetable(value)
    assert str(err.value) == f'parsing "{value}" as fs.BwTimetable failed: {why}'


@pytest.mark.rclone
@pytest.mark.parametrize("value", ["bad", "10M:x", "08:00,512k 12:00", "Mon-25:00,1M", "Foo-10:00,1M", "8:00,1M",
                                   "xx:00,1M", "10:7x,1M", "1,2", "-1M", "10M:1M:1M"])
def test_errors_match_the_reference_rclone(run_rclone, value):
    from pyclone_docker import cli

    res = run_rclone("serve", "docker", f"--bwlimit={value}", "--config", "/dev/null")
    with pytest.raises(cli.UsageError) as err:
        cli.parse_flags([f"--bwlimit={value}"], {})
    assert f"Error: {err.value}" == res.stderr.splitlines()[0]
