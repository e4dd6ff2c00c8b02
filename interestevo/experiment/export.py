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
                           not_before_last_event: bool = False, batch_size: int = 1024,
                           progress: bool = True) -> int:
    """Write ``user_id, rank, item_id, score`` for every user of the tracker's store (atomically:
    the file appears whole or not at all) at ``at`` (``not_before_last_event``: or at a user's last
    event, where that came later). Returns the number of users."""
    path = check_export_path(path)
    users = tracker.user_ids()
    starts = range(0, len(users), batch_size)

    def frames():
        for start in tqdm(starts, desc="recommending", unit="batch", disable=None if progress else True):
            batch = users[start:start + batch_size]
            times = [at] * len(batch)
            if not_before_last_event:
                records = tracker.store.records(batch)
                times = [max(at, records[u].last_time) if u in records else at for u in batch]
            answers = tracker.recommend(batch, at=times, k=k, exclude_seen=exclude_seen)
            short = [a["user"] for a in answers if len(a["items"]) < k]
            if short:  # --exclude-seen can leave fewer unseen items than k
                log.warning("%d user(s) get fewer than %d items (e.g. %s): --exclude-seen leaves no more",
                            len(short), k, short[0])
            rows = [(a["user"], rank, str(entry["item"]), entry["score"])
                    for a in answers for rank, entry in enumerate(a["items"], start=1)]
            yield pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score"]).astype(
                {"user_id": str, "rank": np.int64, "item_id": str, "score": np.float32})

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
