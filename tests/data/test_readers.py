"""Each supported file format, written small into tmp_path, read back into the standard columns."""
import gzip

import numpy as np
import pandas as pd

from interestevo.data import prepare_interactions, read_interactions, read_item_categories


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_with_default_names(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp\n1,10,100\n2,20,200\n")
    frame = read_interactions(path)
    assert list(frame.columns) == ["user_id", "item_id", "timestamp"]
    assert frame["item_id"].tolist() == [10, 20]
    assert frame.attrs["source"] == str(path)


def test_csv_aliases_rating_and_behavior(tmp_path):
    path = write(tmp_path / "log.csv", "userId,movieId,ts,rating,event\n1,10,100,4.5,click\n1,11,101,3,buy\n")
    frame = read_interactions(path)
    assert list(frame.columns) == ["user_id", "item_id", "timestamp", "rating", "behavior"]
    assert frame["behavior"].tolist() == ["click", "buy"]
    assert frame["rating"].tolist() == [4.5, 3.0]


def test_explicit_column_names_and_separator(tmp_path):
    path = write(tmp_path / "log.txt", "who;what;when;kind\na;x;5;cart\nb;y;6;buy\n")
    frame = read_interactions(path, sep=";", user_col="who", item_col="what", time_col="when",
                              behavior_col="kind")
    assert frame.to_dict("list") == {"user_id": ["a", "b"], "item_id": ["x", "y"],
                                     "timestamp": [5, 6], "behavior": ["cart", "buy"]}


def test_tsv_and_gzip(tmp_path):
    tsv = write(tmp_path / "log.tsv", "user_id\titem_id\ttimestamp\n1\t2\t3\n")
    assert read_interactions(tsv).iloc[0].tolist() == [1, 2, 3]
    packed = tmp_path / "log.csv.gz"
    packed.write_bytes(gzip.compress(b"user_id,item_id,timestamp\n7,8,9\n"))
    assert read_interactions(packed).iloc[0].tolist() == [7, 8, 9]


def test_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"uid": [1, 2], "item": ["a", "b"],
                  "time": pd.to_datetime(["2020-01-01", "2020-01-02"], utc=True)}).to_parquet(path)
    data = prepare_interactions(read_interactions(path))
    assert data.timestamp.tolist() == [1577836800, 1577923200]
    assert data.item_ids[1:].tolist() == ["a", "b"]


def test_movielens_u_data(tmp_path):
    path = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    frame = read_interactions(path)
    assert list(frame.columns) == ["user_id", "item_id", "timestamp", "rating"]
    assert frame.iloc[0].tolist() == [196, 242, 881250949, 3]


def test_movielens_ratings_dat(tmp_path):
    path = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    frame = read_interactions(path)
    assert frame["item_id"].tolist() == [1193, 661]
    assert frame["timestamp"].tolist() == [978300760, 978302109]
    assert frame["rating"].tolist() == [5, 3]


def test_movielens_ratings_csv_and_renamed_copy(tmp_path):
    text = "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n"
    for path, fmt in [(write(tmp_path / "ratings.csv", text), None),
                      (write(tmp_path / "copy.txt", text), "movielens")]:
        frame = read_interactions(path, format=fmt)
        assert frame.iloc[0].tolist() == [1, 31, 1260759144, 2.5]


def test_recbole_inter_keeps_tokens_as_strings(tmp_path):
    path = write(tmp_path / "ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                        "007\t242\t3\t881250949\n")
    frame = read_interactions(path)
    assert frame.iloc[0].tolist() == ["007", "242", 881250949.0, 3.0]


GENRES_19 = "|".join(["0"] * 19)


def test_u_item_genre_flags_latin1(tmp_path):
    flags = ["0"] * 19
    flags[1] = flags[5] = "1"  # Action, Comedy
    lines = [f"1|Misérables (1995)|01-Jan-1995||http://x|{'|'.join(flags)}",
             f"2|Nothing (1996)|||x|{GENRES_19}"]
    path = write(tmp_path / "u.item", "\n".join(lines) + "\n", encoding="latin-1")
    items = read_item_categories(path)
    assert items["item_id"].tolist() == [1, 2]
    assert items["categories"].tolist() == [["Action", "Comedy"], []]


def test_movies_dat_titles_with_colons(tmp_path):
    text = "1::Star Wars: Episode IV (1977)::Action|Sci-Fi\n2::Amélie (2001)::Comedy\n"
    items = read_item_categories(write(tmp_path / "movies.dat", text, encoding="latin-1"))
    assert items["categories"].tolist() == [["Action", "Sci-Fi"], ["Comedy"]]


def test_movies_csv(tmp_path):
    text = 'movieId,title,genres\n1,"Toy Story, The (1995)",Adventure|Animation\n2,X,(no genres listed)\n'
    items = read_item_categories(write(tmp_path / "movies.csv", text))
    assert items["categories"].tolist() == [["Adventure", "Animation"], []]


def test_recbole_item_token_seq(tmp_path):
    text = "item_id:token\tmovie_title:token_seq\tclass:token_seq\n242\tKolya\tComedy Drama\n"
    items = read_item_categories(write(tmp_path / "ml.item", text))
    assert items.to_dict("list") == {"item_id": ["242"], "categories": [["Comedy", "Drama"]]}


def test_category_csv_pipes_and_one_row_per_pair(tmp_path):
    text = "item,category\n1,a|b\n2,c\n1,c\n3,\n"
    items = read_item_categories(write(tmp_path / "cats.csv", text))
    assert items["categories"].tolist() == [["a", "b", "c"], ["c"], []]


def test_category_parquet_list_column(tmp_path):
    path = tmp_path / "cats.parquet"
    pd.DataFrame({"item_id": [1, 2], "tags": [["x", "y"], []]}).to_parquet(path)
    assert read_item_categories(path)["categories"].tolist() == [["x", "y"], []]


def test_categories_become_row_normalised_matrix(tmp_path):
    log = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [5, 6, 7], "timestamp": [1, 2, 3]})
    items = pd.DataFrame({"item_id": ["5", "6", "9"], "categories": [["b", "a"], ["a"], ["z"]]})
    data = prepare_interactions(log, items)
    assert data.category_names == ["a", "b", "z"]  # sorted, from the whole table
    np.testing.assert_allclose(data.item_categories, [[0, 0, 0], [.5, .5, 0], [1, 0, 0], [0, 0, 0]])
    assert data.item_categories.dtype == np.float32
