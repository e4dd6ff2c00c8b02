"""Item texts from side files, catalogue items without events, and synthetic cold items."""
import numpy as np
import pandas as pd
import pytest

from interestevo.data import (DataFormatError, SyntheticConfig, generate_synthetic, prepare_interactions,
                              read_items, temporal_split)
from interestevo.data.splits import TRAIN


def write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return path


def test_movielens_texts_are_title_and_genres(tmp_path):
    flags = ["0"] * 19
    flags[1] = flags[5] = "1"
    u_item = write(tmp_path / "u.item", f"1|Misérables (1995)|01-Jan-1995||http://x|{'|'.join(flags)}\n",
                   encoding="latin-1")
    assert read_items(u_item)["text"].tolist() == ["Misérables (1995). Action, Comedy"]
    dat = write(tmp_path / "movies.dat", "1::Star Wars: Episode IV (1977)::Action|Sci-Fi\n2::Amélie (2001)::"
                "(no genres listed)\n", encoding="latin-1")
    assert read_items(dat)["text"].tolist() == ["Star Wars: Episode IV (1977). Action, Sci-Fi", "Amélie (2001)"]
    csv = write(tmp_path / "movies.csv", 'movieId,title,genres\n1,"Toy Story, The (1995)",Adventure\n')
    assert read_items(csv)["text"].tolist() == ["Toy Story, The (1995). Adventure"]


def test_generic_file_joins_title_tags_and_description(tmp_path):
    path = write(tmp_path / "items.csv", "item_id,name,tags,description\n1,Red kettle,kitchen|tea,Boils  fast\n"
                                         "2,,,\n3,Mug,,\n")
    items = read_items(path)
    assert items["text"].tolist() == ["Red kettle. kitchen, tea. Boils fast", None, "Mug"]
    assert items["categories"].tolist() == [["kitchen", "tea"], [], []]


def test_a_named_text_column_is_used_as_is(tmp_path):
    path = write(tmp_path / "items.tsv", "item_id\ttitle\tblurb\n7\tA\tthe blurb\n8\tB\t\n")
    assert read_items(path, text_col="blurb")["text"].tolist() == ["the blurb", None]


def test_recbole_item_file_text(tmp_path):
    path = write(tmp_path / "ml.item", "item_id:token\tmovie_title:token_seq\tclass:token_seq\n242\tKolya\tComedy Drama\n")
    assert read_items(path).to_dict("list") == {"item_id": ["242"], "categories": [["Comedy", "Drama"]],
                                                "text": ["Kolya. Comedy, Drama"]}


@pytest.mark.parametrize("content, kwargs, message", [
    ("item_id,title\n1,x\n", {"text_col": "summary"}, "no text column 'summary'; columns are: item_id, title"),
    ("item_id,price\n1,3\n", {}, "no category, title or description column"),
    ("item_id,title\n1,x\n", {"category_col": "genre"}, "no category column 'genre'"),
])
def test_bad_item_files_name_the_problem(tmp_path, content, kwargs, message):
    with pytest.raises(DataFormatError, match=message):
        read_items(write(tmp_path / "items.csv", content), **kwargs)


def test_movielens_rejects_a_text_column(tmp_path):
    path = write(tmp_path / "movies.dat", "1::X (1990)::Drama\n")
    with pytest.raises(DataFormatError, match="has no named columns"):
        read_items(path, text_col="title")


def test_catalogue_items_without_events_are_kept_on_request():
    frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [20, 10, 20], "timestamp": [1, 2, 3]})
    items = pd.DataFrame({"item_id": [10, 20, 30, 30], "categories": [["a"], [], ["b"], ["c"]],
                          "text": ["ten", None, "thirty", "again"]})
    logged = prepare_interactions(frame, items)
    assert logged.item_ids[1:].tolist() == [10, 20] and logged.item_text.tolist() == [None, "ten", None]
    full = prepare_interactions(frame, items, keep_unlogged_items=True)
    assert full.item_ids[1:].tolist() == [10, 20, 30]
    assert full.item_text.tolist() == [None, "ten", None, "thirty"]  # the first row of an item wins
    assert full.item_ids[full.item].tolist() == [20, 10, 20]
    assert full.report.items == 2 and full.report.unlogged_items == 1
    assert "plus 1 items from the item file without events" in str(full.report)
    np.testing.assert_allclose(full.item_categories[3], [0, 0.5, 0.5])  # both rows' categories


def test_string_item_file_ids_meet_integer_log_ids():
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [5, 6], "timestamp": [1, 2]})
    items = pd.DataFrame({"item_id": ["5", "6", "7"], "categories": [[], [], []], "text": ["a", "b", "c"]})
    full = prepare_interactions(frame, items, keep_unlogged_items=True)
    assert full.item_text[1:].tolist() == ["a", "b", "c"] and full.num_items == 3


def test_synthetic_new_items_appear_only_after_their_release():
    config = SyntheticConfig(num_users=200, num_items=100, num_categories=5, new_items=0.2, seed=4)
    data = generate_synthetic(config)
    release = np.quantile(data.frame["timestamp"], config.release_quantile, method="lower")
    before = data.frame.loc[data.frame["timestamp"] < release, "item_id"]
    after = data.frame.loc[data.frame["timestamp"] >= release, "item_id"]
    new = set(after) - set(before)
    assert 10 <= len(new) <= 20  # most of the 20 new items are picked once released
    inter = data.to_interactions(keep_unlogged_items=True)
    split = temporal_split(inter, t1=config.release_quantile)
    trained = set(inter.item_ids[inter.item[split.role == TRAIN]])
    assert not new & trained
    # The events' times and users are those of the same seed without new items.
    plain = generate_synthetic(SyntheticConfig(num_users=200, num_items=100, num_categories=5, seed=4))
    assert plain.frame["timestamp"].equals(data.frame["timestamp"])
    assert plain.items["text"].equals(data.items["text"])


@pytest.mark.parametrize("field, value", [("new_items", 1.0), ("new_items", -0.1), ("release_quantile", 0.0),
                                          ("text_noise", 1.5)])
def test_synthetic_fractions_are_checked(field, value):
    with pytest.raises(DataFormatError, match=f"SyntheticConfig.{field}"):
        SyntheticConfig(**{field: value})


def test_items_that_cleaning_removed_do_not_return_from_the_item_file():
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 20, 10, 20, 30], "timestamp": [1, 2, 3, 4, 5]})
    items = pd.DataFrame({"item_id": [10, 20, 30, 40], "categories": [[]] * 4, "text": ["a", "b", "c", "d"]})
    inter = prepare_interactions(frame, items, k_core=2, keep_unlogged_items=True)
    assert inter.item_ids[1:].tolist() == [10, 20, 40]  # 30 failed the 2-core; 40 was never logged


def test_movies_csv_with_a_named_text_column_is_read_as_a_table(tmp_path):
    path = write(tmp_path / "movies.csv", "movieId,title,genres,overview\n1,Heat (1995),Crime,A cop and a thief\n"
                                          "2,Void (2001),(no genres listed),\n")
    items = read_items(path, text_col="overview")
    assert items.to_dict("list") == {"item_id": [1, 2], "categories": [["Crime"], []],
                                     "text": ["A cop and a thief", None]}
