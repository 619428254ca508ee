"""The one timecode module: every time vidchat writes, it reads back; bad times are one-line
InputErrors that say what arrived."""

from __future__ import annotations

import pytest

from vidchat.kernel.errors import InputError
from vidchat.kernel.timecode import fmt_span, fmt_time, parse_timecode, timecode_or_none


def test_fmt_time():
    assert fmt_time(0) == "00:00" and fmt_time(75.9) == "01:15" and fmt_time(3725) == "1:02:05"


def test_fmt_time_clamps_negative_times_and_truncates_fractions():
    assert fmt_time(-3.0) == "00:00"
    assert fmt_time(59.999) == "00:59"
    assert fmt_time(3600) == "1:00:00"
    assert fmt_time(36000 + 61) == "10:01:01"


def test_fmt_span_writes_one_time_when_both_ends_read_the_same():
    assert fmt_span(12.0, 15.5) == "00:12–00:15"
    assert fmt_span(12.1, 12.9) == "00:12"
    assert fmt_span(3599, 3601) == "59:59–1:00:01"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90.5", 90.5),
        (".5", 0.5),
        ("0", 0.0),
        ("01:30", 90.0),
        ("1:30", 90.0),
        ("1:5", 65.0),
        ("01:30.25", 90.25),
        ("125:00", 7500.0),  # the first field is free
        ("1:02:03", 3723.0),
        ("0:00:07.5", 7.5),
        ("10:00:00", 36000.0),
        ("  01:30\n", 90.0),
    ],
)
def test_parse_timecode_accepts_seconds_mm_ss_and_h_mm_ss(text, seconds):
    assert parse_timecode(text) == pytest.approx(seconds)


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 75.9, 599, 3599, 3600, 3725, 86399, 360000])
def test_what_vidchat_writes_it_reads_back(seconds):
    assert parse_timecode(fmt_time(seconds)) == int(seconds)
    a, _, b = fmt_span(seconds, seconds + 90).partition("–")
    assert (parse_timecode(a), parse_timecode(b)) == (int(seconds), int(seconds + 90))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", ""),
        ("", ""),
        ("-5", ""),
        ("+5", ""),
        ("nan", ""),
        ("inf", ""),
        ("1e3", ""),
        ("1:30:", ""),
        (":30", ""),
        ("1.5:30", ""),  # a fraction only on the last field
        ("1:3x", ""),
        ("01: 30", ""),
        ("\uff11:30", ""),  # a full-width digit is not read as a number
        ("01:75", " (minutes and seconds after the first field must be under 60)"),
        ("1:60:00", " (minutes and seconds after the first field must be under 60)"),
        ("1:2:3:4", " (at most h:mm:ss)"),
    ],
)
def test_bad_times_name_what_arrived(text, reason):
    with pytest.raises(InputError) as e:
        parse_timecode(text)
    assert str(e.value) == f"expected a time like 01:30 or 90, got {text!r}{reason}"
    assert "\n" not in str(e.value)
    assert timecode_or_none(text) is None


def test_not_text_is_an_input_error_too():
    with pytest.raises(InputError, match="expected a time like 01:30 or 90 \\(text\\), got float"):
        parse_timecode(1.5)  # type: ignore[arg-type]


def test_timecode_or_none_passes_good_times_through():
    assert timecode_or_none("00:12") == 12.0
    assert timecode_or_none("12:75") is None


def test_typed_times_may_overflow_a_field_when_not_strict():
    # The chat REPL and `vidchat zoom` read a typed 1:90 as 150 s and then check the video's
    # length themselves; structure is still checked.
    assert parse_timecode("1:90", strict=False) == 150.0
    assert parse_timecode("9:99:99", strict=False) == 9 * 3600 + 99 * 60 + 99
    for text in ("abc", "-5", "nan", "1:2:3:4"):
        with pytest.raises(InputError, match="expected a time like 01:30 or 90"):
            parse_timecode(text, strict=False)
