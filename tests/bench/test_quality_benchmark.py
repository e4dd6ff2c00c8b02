"""The quality benchmark's data fetching and its tables, on small made-up inputs (the benchmark
itself trains for hours and is not a test)."""
import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import datasets  # noqa: E402
import quality  # noqa: E402

ORIGINAL = b"user_id\titem_id\ttime\n2\t7\t200\n1\t5\t100\n1\t6\t100\n"
CONVERTED = b"user_id,item_id,timestamp\r\n1,5,100\r\n1,6,100\r\n2,7,200\r\n"


@pytest.fixture
def fake_log(monkeypatch):
    log = datasets.RealLog("someone/repo", "0" * 40, "data", {"train.csv": hashlib.sha256(ORIGINAL).hexdigest()},
                           datasets._amazon_rows, hashlib.sha256(CONVERTED).hexdigest(), "a made-up log")
    monkeypatch.setitem(datasets.REAL_LOGS, "fake", log)
    return log


def test_a_real_log_is_converted_from_originals_in_a_source_folder_and_checked(tmp_path, fake_log):
    source = tmp_path / "originals"
    source.mkdir()
    (source / "train.csv").write_bytes(ORIGINAL)
    files = datasets.real_log("fake", cache=tmp_path / "cache", source=source)
    assert files.interactions.read_bytes() == CONVERTED  # sorted by user, then time, then file order
    (source / "train.csv").unlink()
    assert datasets.real_log("fake", cache=tmp_path / "cache").interactions == files.interactions  # cached


def test_an_original_with_another_sha256_is_refused_and_nothing_is_written(tmp_path, fake_log):
    source = tmp_path / "originals"
    source.mkdir()
    (source / "train.csv").write_bytes(ORIGINAL + b"3\t1\t5\n")
    with pytest.raises(RuntimeError, match="train.csv from .* has SHA-256 .*expected"):
        datasets.real_log("fake", cache=tmp_path / "cache", source=source)
    assert not (tmp_path / "cache" / "fake" / "interactions.csv").exists()
    with pytest.raises(ValueError, match="unknown log 'nope'"):
        datasets.real_log("nope", cache=tmp_path)


def result(model, seed, ranks, gaps, log="toy"):
    ranks = np.asarray(ranks)
    hits = (ranks < 10).mean()
    ndcg = float(np.where(ranks < 10, 1 / np.log2(ranks + 2), 0).mean())
    test = {m: ndcg if m.startswith("ndcg") else hits for m in quality.METRICS}
    return {"log": log, "split": "loo", "model": model, "seed": seed, "git": "abc", "cpu": "CPU", "best_epoch": 3,
            "train_seconds": 1.0, "valid": {"ndcg@10": ndcg}, "test": test, "users": list(range(len(ranks))),
            "ranks": ranks.tolist(), "gap_seconds": list(gaps), "history": [5] * len(ranks)}


def test_tables_compare_every_model_with_timelstm_and_report_what_dt_adds_per_gap():
    rng = np.random.default_rng(0)
    gaps = np.repeat([60, 7200, 200_000, 2_000_000], 50)
    good = rng.integers(0, 3, 200)  # timelstm ranks its targets near the top
    results = []
    for seed in (0, 1):
        results += [result("timelstm", seed, good, gaps), result("sasrec", seed, good + 5, gaps),
                    result("timelstm-no-dt", seed, np.where(gaps > 604_800, good + 20, good), gaps)]
    args = argparse.Namespace(splits="loo", seeds="0,1", temporal_seeds="0", models="timelstm,sasrec,timelstm-no-dt",
                              data=None, jobs=2)
    summary = quality.summarise(results, args, "toy")
    summary.update(command="python bench/quality.py", jobs=2)
    summary["runs"]["seconds"] = 60.0
    part = summary["splits"]["loo"]
    assert part["bootstrap_vs_timelstm"]["sasrec"]["low"] > 0  # wholly above 0: timelstm wins
    effect = part["time_effect_by_gap"]
    assert effect["< 1 h"]["mean"] == 0 and effect["> 1 week"]["low"] > 0
    text = quality.markdown(summary)
    assert "What Δt adds" in text and "| > 1 week | 50 |" in text
    table = quality.readme_table([summary], "python bench/quality.py")
    assert table.startswith(quality.README_START) and table.endswith(quality.README_END)
    assert "| timelstm | **" in table and "vs sasrec" in table
