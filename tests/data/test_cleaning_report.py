"""The cleaning report says what was dropped and why, with line numbers; mixed units are refused."""
import numpy as np
import pandas as pd
import pytest

from interestevo.data import DataFormatError, prepare_interactions, read_interactions


def log_file(tmp_path, lines, name="log.csv"):
    path = tmp_path / name
    path.write_bytes(("user_id,item_id,timestamp\n" + "\n".join(lines) + "\n").encode())
    return path


def test_each_drop_is_counted_by_reason_with_line_numbers(tmp_path):
    lines = ["1,10,1600000000",          # line 2, kept
             "1,11,soon",                # line 3, unparsable timestamp
             "1,12,1e20",                # line 4, out of range
             "1,13,inf",                 # line 5, out of range
             "",                         # line 6, blank
             "1,1\x004,1600000100",      # line 7, NUL byte
             "1,,1600000200",            # line 8, missing item
             "1,10,1600000000",          # line 9, duplicate of line 2
             "2,10,1600000300"]          # line 10, kept
    inter = prepare_interactions(read_interactions(log_file(tmp_path, lines)))
    report = inter.report
    assert report.dropped == {"blank line": 1, "NUL byte": 1, "missing value": 1, "timestamp out of range": 2,
                              "unparsable timestamp": 1, "unparsable rating": 0, "exact duplicate": 1}
    assert report.examples["timestamp out of range"] == [4, 5]
    assert report.examples["NUL byte"] == [7] and report.examples["exact duplicate"] == [9]
    assert len(inter) == 2 and [str(i) for i in inter.item_ids[1:]] == ["10"]  # "1\x004" is no new item
    assert report.dropped_fraction == pytest.approx(6 / 8)  # blank lines hold no data
    text = str(report)
    assert "\n" not in text and "timestamp out of range: 2 rows (lines 4, 5)" in text and "NUL bytes" in text
    saved = report.to_dict()
    assert saved["dropped"]["unparsable timestamp"] == {"rows": 1, "examples": [3]}
    assert saved["examples_are"] == "line numbers"


def test_mixed_seconds_and_milliseconds_are_refused_naming_the_rows(tmp_path):
    seconds = [f"{u},{u % 7},{1_600_000_000 + 3600 * u}" for u in range(20)]
    millis = [f"{u},{u % 7},{(1_600_000_000 + 3600 * u) * 1000}" for u in range(20, 23)]
    path = log_file(tmp_path, seconds + millis)
    with pytest.raises(DataFormatError) as caught:
        prepare_interactions(read_interactions(path))
    message = str(caught.value)
    assert "mixes units: 3 look like milliseconds, 20 look like seconds" in message
    assert "3 rows disagree" in message and "lines 22, 23, 24" in message


def test_one_unit_throughout_is_still_converted():
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "timestamp": [1_600_000_000_000_000,
                                                                            1_600_000_360_000_000]})
    inter = prepare_interactions(frame)
    assert inter.report.timestamp_unit == "microseconds"
    assert inter.timestamp.tolist() == [1_600_000_000, 1_600_000_360]
    assert np.isclose(inter.dt[1], 0.1)


def test_an_item_file_whose_ids_match_nothing_in_the_log_is_refused():
    log = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 11, 10], "timestamp": [1, 2, 3]})
    items = pd.DataFrame({"item_id": [500, 501], "categories": [["a"], ["b"]]})
    with pytest.raises(DataFormatError, match="none of the item file's 2 item ids occurs in the log"):
        prepare_interactions(log, items)
    matching = pd.DataFrame({"item_id": [10, 501], "categories": [["a"], ["b"]]})
    assert prepare_interactions(log, matching).num_categories == 2
