"""Every bad input raises DataFormatError with one line naming the file or argument and the problem."""
import pandas as pd
import pytest

from interestevo.data import (DataFormatError, prepare_interactions, read_interactions,
                              read_item_categories)

GOOD = pd.DataFrame({"user_id": [1], "item_id": [1], "timestamp": [1]})


def write(path, text):
    path.write_text(text)
    return path


def raises(call, *fragments):
    with pytest.raises(DataFormatError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(info.value, ValueError)


def test_missing_file_and_directory(tmp_path):
    raises(lambda: read_interactions(tmp_path / "nope.csv"), "nope.csv", "not found")
    raises(lambda: read_interactions(tmp_path), "not a file")
    raises(lambda: read_item_categories(tmp_path / "u.item"), "u.item", "not found")


def test_unknown_and_undetectable_format(tmp_path):
    path = write(tmp_path / "log.xyz", "user_id,item_id,timestamp\n1,2,3\n")
    raises(lambda: read_interactions(path, format="xlsx"), "format='xlsx'", "csv, tsv, parquet")
    raises(lambda: read_interactions(path), "log.xyz", "cannot tell the format", "format=")


def test_missing_columns_name_the_column_and_list_the_columns(tmp_path):
    path = write(tmp_path / "log.csv", "a,item_id,timestamp\n1,2,3\n")
    raises(lambda: read_interactions(path), "log.csv", "no user column", "columns are: a, item_id, timestamp",
           "user_col=")
    raises(lambda: read_interactions(path, user_col="a", time_col="when"), "no timestamp column 'when'")
    raises(lambda: read_interactions(path, user_col="a", rating_col="stars"), "no rating column 'stars'")


def test_empty_logs(tmp_path):
    raises(lambda: read_interactions(write(tmp_path / "empty.csv", "")), "empty.csv", "empty")
    raises(lambda: read_interactions(write(tmp_path / "head.csv", "user_id,item_id,timestamp\n")),
           "head.csv", "no interactions")
    raises(lambda: prepare_interactions(GOOD.iloc[:0]), "no interactions")
    raises(lambda: prepare_interactions(pd.DataFrame({"user_id": [None], "item_id": [1], "timestamp": [1]})),
           "no interactions left after cleaning", "missing")


def test_non_numeric_timestamp_column_names_the_file(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp\n1,2,yesterday\n1,3,later\n")
    raises(lambda: prepare_interactions(read_interactions(path)), "log.csv", "timestamp column",
           "'yesterday'")
    raises(lambda: prepare_interactions(GOOD.assign(timestamp=[True])), "booleans")


def test_malformed_files(tmp_path):
    raises(lambda: read_interactions(write(tmp_path / "ratings.dat", "1::2::3::4::5\n")),
           "ratings.dat", "4 MovieLens fields", "got 5")
    raises(lambda: read_interactions(write(tmp_path / "ratings.dat", "1::2::3\n")), "got 3")
    raises(lambda: read_interactions(write(tmp_path / "ratings.dat", "1:2:3:4\n")),
           "UserID::MovieID::Rating::Timestamp")
    raises(lambda: read_interactions(write(tmp_path / "u.data", "1\t2\n")), "u.data", "4 MovieLens fields")
    raises(lambda: read_interactions(write(tmp_path / "ratings.csv", "a,b\n1,2\n")), "ratings.csv",
           "userId, movieId, rating, timestamp")
    raises(lambda: read_interactions(write(tmp_path / "x.inter", "user_id\titem_id\n1\t2\n")),
           "x.inter", "'name:type'")
    raises(lambda: read_interactions(write(tmp_path / "bad.parquet", "not parquet")), "bad.parquet",
           "cannot read as parquet")
    raises(lambda: read_interactions(write(tmp_path / "q.csv", 'user_id,item_id,timestamp\n1,2,"3\n')),
           "q.csv", "cannot read as csv")


def test_bad_item_files(tmp_path):
    raises(lambda: read_item_categories(write(tmp_path / "items.csv", "item_id,title\n1,x\n")),
           "items.csv", "no category column", "category_col=")
    items = write(tmp_path / "items.csv", "item_id,cat\n1,x\n")
    raises(lambda: read_item_categories(items, category_col="c"),
           "no category column 'c'", "columns are: item_id, cat")
    raises(lambda: read_item_categories(write(tmp_path / "u.item", "1|x|2\n")), "u.item", "19 genre flags")
    raises(lambda: read_item_categories(write(tmp_path / "movies.csv", "movieId,title\n1,x\n")),
           "movies.csv", "movieId, title, genres")


def test_bad_arguments_to_prepare():
    raises(lambda: prepare_interactions(GOOD, dt_unit="weeks"), "dt_unit='weeks'", "hours")
    raises(lambda: prepare_interactions(GOOD, k_core=-1), "k_core=-1")
    raises(lambda: prepare_interactions(GOOD[["user_id"]]), "lacks column(s) item_id, timestamp")
    raises(lambda: prepare_interactions(GOOD, item_categories=pd.DataFrame({"item": [1]})),
           "item_categories lacks column(s)")
