"""Reading interaction logs and item categories from files, in any supported format.

Readers only find and rename columns; values stay raw. Cleaning is ``prepare_interactions``'s job.
"""
from __future__ import annotations

import pandas as pd

from . import movielens, recbole
from .categories import lists_from_pairs, lists_from_strings
from .errors import DataFormatError
from .formats import detect_format, existing_file, find_column, read_table
from .texts import DESCRIPTION_ALIASES, TITLE_ALIASES, clean_texts, compose_texts

# Names real logs use for our columns, tried (case-insensitively) when the default is absent.
USER_ALIASES = ("userId", "user", "uid", "visitorid", "reviewerID", "customer_id", "session_id")
ITEM_ALIASES = ("movieId", "itemId", "item", "iid", "asin", "product_id", "article_id")
TIME_ALIASES = ("ts", "time", "datetime", "date", "event_time", "unix_timestamp")
RATING_ALIASES = ("rating", "ratings", "score")
BEHAVIOR_ALIASES = ("behavior", "behaviour", "behavior_type", "behaviour_type", "event", "event_type",
                    "action", "action_type")
CATEGORY_ALIASES = ("category", "categories", "genre", "genres", "class", "tags", "tag", "cate_id",
                    "category_id", "categoryid")


def read_interactions(path, format=None, user_col="user_id", item_col="item_id",
                      time_col="timestamp", rating_col=None, behavior_col=None,
                      sep=None) -> pd.DataFrame:
    """Read an interaction log into a raw frame with columns ``user_id, item_id, timestamp``
    (plus ``rating`` and ``behavior`` when the file has them).

    ``format`` is one of csv, tsv, parquet, movielens, recbole; by default it follows the file
    name (``u.data``, ``ratings.dat``, ``ratings.csv``, ``*.inter``, ``*.csv``, ``*.tsv``,
    ``*.parquet``, optionally ``.gz``-compressed). Column names left at their defaults fall back
    to common aliases (``userId``, ``movieId``, ``ts``...); ``rating_col``/``behavior_col`` default
    to a column named like ``rating``/``behavior`` if there is one. A name you pass that is not in
    the file is an error.

    >>> frame = read_interactions("ml-100k/u.data")             # doctest: +SKIP
    >>> frame = read_interactions("log.csv", user_col="visitor")  # doctest: +SKIP
    """
    path = existing_file(path)
    fmt = detect_format(path, format, sep)
    if fmt == "movielens":
        raw = movielens.read_ratings(path)
    elif fmt == "recbole":
        raw, _ = recbole.read_atomic(path)
    else:
        raw = read_table(path, fmt, sep, skip_blank_lines=False)
    columns = {
        "user_id": find_column(raw.columns, user_col, "user_id", USER_ALIASES, "user", "user_col", path),
        "item_id": find_column(raw.columns, item_col, "item_id", ITEM_ALIASES, "item", "item_col", path),
        "timestamp": find_column(raw.columns, time_col, "timestamp", TIME_ALIASES, "timestamp",
                                 "time_col", path),
        "rating": find_column(raw.columns, rating_col, None, RATING_ALIASES, "rating", "rating_col",
                              path, required=False),
        "behavior": find_column(raw.columns, behavior_col, None, BEHAVIOR_ALIASES, "behavior",
                                "behavior_col", path, required=False),
    }
    columns = {ours: theirs for ours, theirs in columns.items() if theirs is not None}
    if len(raw) == 0:
        raise DataFormatError(f"{path}: no interactions (the file has no data rows)")
    frame = pd.DataFrame({ours: raw[theirs].to_numpy() for ours, theirs in columns.items()})
    frame.attrs["source"] = str(path)  # lets prepare_interactions name the file in its errors
    if raw.attrs.get("first_line") is not None:  # lets the cleaning report give line numbers
        frame.attrs["first_line"] = raw.attrs["first_line"]
    return frame


def read_item_categories(path, format=None, item_col=None, category_col=None) -> pd.DataFrame:
    """Read item side information into ``item_id, categories`` (a list of names per item).

    MovieLens ``u.item`` (19 genre flags), ``movies.dat`` and ``movies.csv`` (``A|B`` genres),
    RecBole ``.item`` (a ``token_seq`` or ``token`` column such as ``genre`` or ``class``), or a
    CSV/TSV/Parquet file with an item column and a category column (``A|B`` for several, or one
    row per item and category). ``category_col`` defaults to the first column named like
    ``category``, ``genre``, ``class`` or ``tags``.

    >>> items = read_item_categories("ml-100k/u.item")                        # doctest: +SKIP
    >>> items = read_item_categories("items.csv", category_col="cat")         # doctest: +SKIP
    """
    items = read_items(path, format, item_col=item_col, category_col=category_col, require_categories=True)
    return items[["item_id", "categories"]]


def read_items(path, format=None, item_col=None, category_col=None, text_col=None,
               require_categories=False) -> pd.DataFrame:
    """Read an item side file into ``item_id, categories, text``, one row per item.

    ``categories`` as in :func:`read_item_categories` (empty lists when the file has none).
    ``text`` is the ``text_col`` column when given; otherwise the title (a column named like
    ``title`` or ``name``), the categories and a description (``description``, ``overview``...)
    joined, e.g. ``"Toy Story (1995). Animation, Children's, Comedy"``. Items with no text at
    all get None. MovieLens files give title and genres.

    >>> items = read_items("ml-1m/movies.dat")                                # doctest: +SKIP
    >>> items = read_items("products.parquet", text_col="description")        # doctest: +SKIP
    """
    path = existing_file(path)
    fmt = detect_format(path, format)
    movielens_table = False
    if fmt == "movielens" and (text_col is not None or category_col is not None):
        if movielens.layout(path) != "csv":
            raise DataFormatError(f"{path}: this MovieLens file has no named columns; its texts are the title "
                                  f"and genres and its categories the genres (leave text_col/category_col unset)")
        fmt, movielens_table = "csv", True  # movies.csv with named columns: read it as the table it is
    if fmt == "movielens":
        movies = movielens.read_movies(path)
        texts = compose_texts(movies["title"], movies["categories"], None, len(movies))
        items = _with_texts(movies[["item_id", "categories"]], texts)
    else:
        items = _read_item_table(path, fmt, item_col, category_col, text_col, require_categories)
        if movielens_table:
            items["categories"] = [[c for c in cats if c != movielens.NO_GENRE] for cats in items["categories"]]
    if len(items) == 0:
        raise DataFormatError(f"{path}: no items (the file has no data rows)")
    return items


def read_item_labels(path, format=None, item_col=None, category_col=None) -> pd.DataFrame:
    """``item_id, title, categories``: what a table of recommendations shows next to each item
    (title None where the file has none; categories as lists, empty where it has none).

    >>> labels = read_item_labels("ml-1m/movies.dat")                        # doctest: +SKIP
    """
    path = existing_file(path)
    fmt = detect_format(path, format)
    if fmt == "movielens" and category_col is None:
        return movielens.read_movies(path)[["item_id", "title", "categories"]]
    items = read_items(path, format, item_col=item_col, category_col=category_col)
    if fmt == "movielens":
        fmt = "csv"  # movies.csv read as a table (read_items refuses other MovieLens files here)
    raw = recbole.read_atomic(path)[0] if fmt == "recbole" else read_table(path, fmt)
    item = find_column(raw.columns, item_col, "item_id", ITEM_ALIASES, "item", "item_col", path)
    title = find_column(raw.columns, None, None, TITLE_ALIASES, "title", "text_col", path, required=False)
    first = raw[raw[item].notna() & ~raw[item].duplicated()]
    titles = [None] * len(first) if title is None else [None if pd.isna(t) else str(t) for t in first[title]]
    return pd.DataFrame({"item_id": items["item_id"].to_numpy(), "title": titles,
                         "categories": items["categories"].to_numpy()})


def _read_item_table(path, fmt, item_col, category_col, text_col, require_categories) -> pd.DataFrame:
    if fmt == "recbole":
        raw, types = recbole.read_atomic(path)
    else:
        raw, types = read_table(path, fmt), {}
    item = find_column(raw.columns, item_col, "item_id", ITEM_ALIASES, "item", "item_col", path)
    category = find_column(raw.columns, category_col, None, CATEGORY_ALIASES, "category", "category_col",
                           path, required=require_categories)
    if category is None:
        items = lists_from_pairs(raw[item], [None] * len(raw), all_items=raw[item])
    else:
        # token_seq holds space-separated tokens; a plain token is one category; CSVs use "A|B".
        sep = {"token_seq": " ", "token": None}.get(types.get(category), "|")
        items = lists_from_strings(raw[item], raw[category], sep)
    first = raw[raw[item].notna() & ~raw[item].duplicated()]  # one row per item, in items' order
    if text_col is not None:
        column = find_column(raw.columns, text_col, None, (), "text", "text_col", path)
        return _with_texts(items, clean_texts(first[column], len(first)))
    title = find_column(raw.columns, None, None, TITLE_ALIASES, "title", "text_col", path, required=False)
    about = find_column(raw.columns, None, None, DESCRIPTION_ALIASES, "description", "text_col", path,
                        required=False)
    if category is None and title is None and about is None:
        raise DataFormatError(
            f"{path}: no category, title or description column; columns are: "
            f"{', '.join(map(str, raw.columns))}; name one with category_col= or text_col= "
            f"(--category-col, --text-col on the command line)")
    texts = compose_texts(None if title is None else first[title], items["categories"],
                          None if about is None else first[about], len(first))
    return _with_texts(items, texts)


def _with_texts(items: pd.DataFrame, texts: list) -> pd.DataFrame:
    # object dtype keeps None as None (a string column would turn it into NaN)
    return items.assign(text=pd.Series(texts, index=items.index, dtype=object))
