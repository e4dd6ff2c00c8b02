"""Top-k recommendations for every user of a run, streamed to a CSV or Parquet file in batches."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ..checkpoint import atomic_write

log = logging.getLogger("interestevo.experiment")

EXPORT_FORMATS = (".csv", ".parquet")


def check_export_path(path: str | os.PathLike) -> Path:
    """The file to write: a .csv or .parquet name that does not exist yet, in an existing folder."""
    path = Path(path)
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise ValueError(f"--out {path}: expected a file name ending in .csv or .parquet")
    if path.exists():
        raise ValueError(f"--out {path} exists; choose a new file (nothing is overwritten)")
    if not path.parent.is_dir():
        raise ValueError(f"--out {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"--out {path}: the folder {path.parent} is not writable")
    return path


def export_recommendations(tracker, path: str | os.PathLike, at: int, k: int, exclude_seen: bool = False,
                           batch_size: int = 1024, progress: bool = True) -> int:
    """Write ``user_id, rank, item_id, score`` for every user the tracker holds (atomically: the
    file appears whole or not at all). Returns the number of users."""
    path = check_export_path(path)
    users = list(tracker.user_ids)
    starts = range(0, len(users), batch_size)

    def frames():
        for start in tqdm(starts, desc="recommending", unit="batch", disable=None if progress else True):
            batch = users[start:start + batch_size]
            recs = tracker.recommend(batch, at=[at] * len(batch), k=k, exclude_seen=exclude_seen)
            width = recs.items.shape[1]
            if width < k:  # the tracker shrinks k to what every user of the batch has left unseen
                log.warning("users %d-%d get %d items, not %d: --exclude-seen leaves no more for some of "
                            "them", start + 1, start + len(batch), width, k)
            yield pd.DataFrame({
                "user_id": np.repeat(np.asarray(batch, dtype=object), width).astype(str),
                "rank": np.tile(np.arange(1, width + 1), len(batch)),
                "item_id": recs.items.reshape(-1).astype(str),
                "score": recs.scores.numpy().reshape(-1).astype(np.float32)})

    if path.suffix.lower() == ".csv":
        def write(handle):
            for n, frame in enumerate(frames()):
                frame.to_csv(handle, header=n == 0, index=False)
        atomic_write(path, "w", write)
    else:
        def write(handle):
            writer = None
            for frame in frames():
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(handle, table.schema)
                writer.write_table(table)
            if writer is not None:
                writer.close()
        atomic_write(path, "wb", write)
    return len(users)
