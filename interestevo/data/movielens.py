"""MovieLens files: ratings (``u.data``, ``ratings.dat``, ``ratings.csv``) and movies with genres
(``u.item``, ``movies.dat``, ``movies.csv``), mapped to our column names."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from .categories import lists_from_flags, lists_from_strings
from .errors import DataFormatError
from .formats import plain_name, read_table

RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]

# The 19 genre flags of ml-100k's u.item, in file order (as listed in its u.genre).
ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
]
NO_GENRE = "(no genres listed)"  # ml-latest's marker for a movie without genres


def layout(path: Path) -> str:
    """``"tab"`` (u.data, u.item), ``"colons"`` (*.dat) or ``"csv"`` (ml-latest, with header).

    Known file names decide; otherwise the first line does, so ``format="movielens"`` works on
    renamed copies too.
    """
    name = plain_name(path)
    if name.startswith("u.") and name != "u.user":
        return "tab"
    if name.endswith(".dat"):
        return "colons"
    if name.endswith(".csv"):
        return "csv"
    with open(path, encoding="latin-1") as handle:
        first = handle.readline()
    if "::" in first:
        return "colons"
    return "tab" if ("\t" in first or "|" in first) else "csv"


def read_ratings(path: Path) -> pd.DataFrame:
    """Ratings with columns ``user_id, item_id, rating, timestamp`` (raw values)."""
    kind = layout(path)
    if kind == "tab":
        frame = read_table(path, "tsv", header=None, skip_blank_lines=False)
    elif kind == "colons":
        # "1::1193::5::978300760": splitting on single colons keeps pandas' fast C parser (a
        # two-character separator would need the slow Python one); the empty fields between the
        # colon pairs are dropped below.
        frame = read_table(path, "csv", sep=":", header=None, skip_blank_lines=False)
        if frame.shape[1] % 2 == 0 or not frame[list(range(1, frame.shape[1], 2))].isna().all().all():
            raise DataFormatError(f"{path}: expected lines 'UserID::MovieID::Rating::Timestamp'")
        frame = frame[list(range(0, frame.shape[1], 2))]
    else:
        frame = read_table(path, "csv", skip_blank_lines=False)
        frame = frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
        if list(frame.columns) == RATING_COLUMNS:
            return frame
        raise DataFormatError(
            f"{path}: expected MovieLens columns userId, movieId, rating, timestamp; "
            f"got {', '.join(map(str, frame.columns))}")
    if frame.shape[1] != 4:
        raise DataFormatError(
            f"{path}: expected 4 MovieLens fields per line (user, item, rating, timestamp); "
            f"got {frame.shape[1]}")
    frame.columns = RATING_COLUMNS
    return frame


def read_movies(path: Path) -> pd.DataFrame:
    """Movies with columns ``item_id, categories`` (genre names as lists) and ``title``."""
    kind = layout(path)
    if kind == "tab":
        frame = read_table(path, "csv", sep="|", header=None, encoding="latin-1",
                           quoting=csv.QUOTE_NONE)
        if frame.shape[1] < 1 + len(ML100K_GENRES):
            raise DataFormatError(
                f"{path}: expected u.item lines with an id and {len(ML100K_GENRES)} genre flags "
                f"separated by '|'; got {frame.shape[1]} fields")
        flags = frame.iloc[:, -len(ML100K_GENRES):].fillna(0).to_numpy()
        movies = lists_from_flags(frame[0], flags, ML100K_GENRES)
        return movies.assign(title=_titles(frame[0], frame[1], movies["item_id"]))
    if kind == "colons":
        # Titles may contain ':' ("Star Wars: Episode IV"), so read whole lines and split on '::'.
        lines = read_table(path, "csv", sep="\x01", header=None, quoting=csv.QUOTE_NONE)[0]
        fields = lines.astype(str).str.split("::", n=2, expand=True)
        if fields.shape[1] != 3:
            raise DataFormatError(f"{path}: expected lines 'MovieID::Title::Genre1|Genre2'")
        frame = pd.DataFrame({"item_id": pd.to_numeric(fields[0], errors="coerce"), "title": fields[1],
                              "genres": fields[2]})
    else:
        frame = read_table(path, "csv").rename(columns={"movieId": "item_id"})
        if not {"item_id", "genres"} <= set(frame.columns):
            raise DataFormatError(
                f"{path}: expected MovieLens columns movieId, title, genres; "
                f"got {', '.join(map(str, frame.columns))}")
    genres = frame["genres"].where(frame["genres"] != NO_GENRE)
    movies = lists_from_strings(frame["item_id"], genres, sep="|")
    titles = frame["title"] if "title" in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    return movies.assign(title=_titles(frame["item_id"], titles, movies["item_id"]))


def _titles(ids: pd.Series, titles: pd.Series, order: pd.Series) -> list:
    """The title of each id of ``order`` (the first one given for an id; None if it has none)."""
    first = pd.Series(titles.to_numpy(), index=ids.to_numpy()).loc[lambda s: ~s.index.duplicated()]
    return [None if pd.isna(t) else str(t) for t in first.reindex(order.to_numpy()).to_numpy()]
