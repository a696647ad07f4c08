"""A log's lines get the time its log was first seen holding them."""

from __future__ import annotations

from datetime import UTC, datetime

from scheduler.runs.log_times import line_times, parse_stamps, split_lines, times_key

END = datetime(2026, 1, 1, tzinfo=UTC)
END_MS = int(END.timestamp() * 1000)


def test_each_line_gets_the_first_stamp_that_holds_all_of_it() -> None:
    data = b"one\ntwo\nthree\nfour"
    #        0..3  4..7  8..13  14..17
    stamps = [(4, 1000), (13, 2000), (14, 2500)]
    assert line_times(data, stamps, END) == [1000, 2000, 2500, END_MS]
    assert line_times(data, stamps, None)[-1] is None  # still running: unknown yet
    assert line_times(b"", stamps, END) == []
    assert line_times(b"a\nb\n", [], END) == [END_MS, END_MS]


def test_stamps_are_read_leniently() -> None:
    text = "4 1000\n13 2000\ngarbage\n14 \n 15 3000\n"
    assert parse_stamps(text) == [(4, 1000), (13, 2000)]
    assert times_key("logs/trn-1/0.log") == "logs/trn-1/0.log.times"


def test_only_newlines_end_lines() -> None:
    data = "progress 10%\rprogress 99%\r\n\u00e9\x0c\u00e8\u2028\u00ea\nlast".encode()
    assert split_lines(data) == [
        b"progress 10%\rprogress 99%\r\n",
        "\u00e9\x0c\u00e8\u2028\u00ea\n".encode(),
        b"last",
    ]
    assert len(line_times(data, [(5, 1)], END)) == 3
    assert split_lines(b"") == [] and split_lines(b"a\n") == [b"a\n"]
