"""Real datasets for the benchmarks, fetched on demand and never committed.

MovieLens-100K in RecBole's atomic format ships inside the ``recbole==1.2.1`` wheel on the package
index. :func:`movielens_100k` downloads that wheel with ``pip download --no-deps`` (so it works from
a local index or a mirror, offline if the wheel is already in pip's cache), extracts the two files
to a cache folder and checks their SHA-256, so every benchmark reads exactly the same bytes.

    python bench/datasets.py            # fetch (if needed) and print the paths
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

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
            partial = path.with_name(f".{path.name}.tmp")
            partial.write_bytes(data)
            os.replace(partial, path)  # atomic: a killed fetch never leaves a half file under the real name


if __name__ == "__main__":
    files = movielens_100k()
    print(files.interactions)
    print(files.items)
