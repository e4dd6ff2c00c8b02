"""Recommendation quality on real data: every log x model x seed, with `interestevo train`'s
defaults, mean ± std, paired bootstrap over users, metrics by gap and by history length.

    python bench/quality.py --readme         # MovieLens-100K and the three logs of datasets.REAL_LOGS, 3 seeds
    python bench/quality.py --quick          # one seed
    python bench/quality.py --logs 30music-test5 --splits loo,temporal
    python bench/quality.py --data my_log.parquet --name mine     # your log (CSV, Parquet, RecBole, MovieLens)

Every neural model gets the same scoring terms (item activity, re-consumption), data, split, loss,
budget and selection rule (best validation NDCG@10); the rows differ in their sequence encoder only.
Two ablations of timelstm: ``timelstm-no-terms`` (without the two terms) and ``timelstm-no-dt``
(every elapsed time its encoder reads set to 0).

Each finished (split, model, seed) is stored in ``<out>_runs/`` with the git commit it ran at, and
reused when the script runs again with the same settings, data and :data:`REVISION`, so an
interrupted benchmark continues where it stopped. Bump REVISION with any change that alters results.
Results: ``<out>.json``, ``<out>.md``, ``<out>.png``; with ``--readme`` also the README's table.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MODELS = ("timelstm", "sasrec", "tisasrec", "lstm", "gru", "pop", "timelstm-no-dt", "timelstm-no-terms")
#: benchmark rows that are a model with other settings: name -> (model, ModelConfig changes)
VARIANTS = {"timelstm-no-terms": ("timelstm", {"item_activity": False, "repeat_scores": False})}
#: the logs of the default run: MovieLens-100K, then those of datasets.REAL_LOGS
LOGS = ("ml100k", "amazon-grocery", "30music-test5", "yoochoose-100k")
#: the models the quality claim is about (the rest are a baseline and ablations)
COMPARED = ("timelstm", "sasrec", "tisasrec", "lstm", "gru")
METRICS = ("hit@10", "ndcg@10", "mrr@10", "hit@20", "ndcg@20", "mrr@20")
BOOTSTRAP_SAMPLES = 2000
REVISION = 3  # of the models, training and evaluation as far as results go: stored runs of another are redone
# 2: the CPU op's per-step GEMMs on oneDNN's micro-kernel (float32, AVX-512) round differently
# 3: the scoring terms for every neural model; timelstm reads its recent events
#: RecBole 1.2.1 on MovieLens-100K, leave-one-out, full ranking, as measured (../shared/REAL-DATA.md)
RECBOLE_ML100K = {
    "RecBole GRU4Rec": {"ndcg@10": 0.0613, "hit@10": 0.1262, "ndcg@20": 0.0806},
    "RecBole SASRec": {"ndcg@10": 0.0609, "hit@10": 0.1251, "ndcg@20": 0.0870},
}
README_START, README_END = "<!-- quality:start -->", "<!-- quality:end -->"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--logs", default=",".join(LOGS), help=f"which logs (default: {','.join(LOGS)})")
    p.add_argument("--data", help="your interaction log instead of --logs")
    p.add_argument("--format", help="format of --data (default: from the file name)")
    p.add_argument("--items", help="item side file of --data")
    p.add_argument("--name", default=None, help="the name of --data in the result files (default: its file name)")
    p.add_argument("--source", action="append", default=[], metavar="LOG=PATH",
                   help="without the network: where a real log's original files are (a folder, or the git "
                        "directory of a copy of its repository); see datasets.py")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--splits", default="loo")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the leave-one-out runs")
    p.add_argument("--temporal-seeds", default="0,1,2", help="seeds of the temporal-split runs")
    p.add_argument("--quick", action="store_true", help="one seed (0) everywhere")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (each gets cores / jobs threads)")
    p.add_argument("--out", default=None, help="results folder (default: bench/results); files quality_<log>.*")
    p.add_argument("--readme", action="store_true", help="also write the README's quality table")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = args.temporal_seeds = "0"
    if args.data:
        args.logs = args.name or Path(args.data).stem.replace(".", "_")
    args.out = Path(args.out or ROOT / "bench" / "results")
    args.sources = dict(part.split("=", 1) for part in args.source)
    return args


def data_config(args, log: str, split: str):
    from interestevo.run.config import DataConfig

    if args.data:
        return DataConfig(path=args.data, format=args.format, items=args.items, split=split)
    import datasets

    if log == "ml100k":
        files = datasets.movielens_100k()
        return DataConfig(path=str(files.interactions), format=files.format, items=str(files.items), split=split)
    files = datasets.real_log(log, source=args.sources.get(log))
    return DataConfig(path=str(files.interactions), format=files.format, split=split)


def experiment_config(data, row: str):
    """`interestevo train`'s defaults for the benchmark row ``row`` (a model or a VARIANTS name)."""
    from interestevo.run.config import ExperimentConfig

    model, changes = VARIANTS.get(row, (row, {}))
    config = ExperimentConfig(data=data, models=(model,))
    for key, value in changes.items():
        setattr(config.model, key, value)
    return config


def run_one(job: dict) -> dict:
    """Train and test one (log, split, model, seed) with the defaults of ``interestevo train``."""
    import torch

    from interestevo.run.dataset import load_dataset
    from interestevo.models import build_model
    from interestevo.train import evaluate, train_model

    torch.set_num_threads(job["threads"])
    config = experiment_config(job["data"], job["model"])
    config.train.seed, config.train.progress = job["seed"], False
    dataset = load_dataset(config.data)
    inter = dataset.inter
    torch.manual_seed(job["seed"])
    categories = None if inter.item_categories is None else torch.from_numpy(inter.item_categories)
    model = build_model(config.models[0], inter.num_items, config.model, categories)
    began = time.perf_counter()
    best_epoch = 0
    if job["model"] == "pop":
        model.fit(torch.from_numpy(inter.item[dataset.train_targets]))
    else:
        best_epoch = train_model(model, inter, dataset.train_targets, dataset.valid_targets, config.train,
                                 name=f"{job['log']}/{job['split']}/{job['model']}/{job['seed']}").best_epoch
    seconds = time.perf_counter() - began
    valid = evaluate(model, inter, dataset.valid_targets).summary()
    test = evaluate(model, inter, dataset.test_targets)
    timestamps, users = np.asarray(inter.timestamp), np.asarray(inter.user)
    return {**{k: job[k] for k in ("log", "split", "model", "seed", "key")}, "git": _git_commit(), "cpu": _cpu_model(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "best_epoch": best_epoch,
            "train_seconds": round(seconds, 1), "valid": valid, "test": test.summary(),
            "users": users[test.events].tolist(), "ranks": test.ranks.tolist(),
            "gap_seconds": (timestamps[test.events] - timestamps[test.events - 1]).tolist(),
            "history": test.history.tolist()}


def seeds_of(args, split: str) -> list[int]:
    return [int(s) for s in (args.temporal_seeds if split == "temporal" else args.seeds).split(",")]


def job_key(data, model: str, seed: int) -> str:
    """Changes with the defaults, the data and REVISION, so a stored run is reused only when valid."""
    config = experiment_config(data, model)
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True, default=str).encode())
    digest.update(f"{REVISION}/{model}/{seed}".encode())
    for path in (data.path, data.items):
        if path:
            digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()[:16]


def run_all(args) -> list[dict]:
    """Every (log, split, model, seed) result; stored ones reused are marked ``reused``."""
    import torch  # noqa: F401  (fail early without torch)

    threads = max(1, (os.cpu_count() or 1) // max(args.jobs, 1))
    jobs, results = [], []
    for log in args.logs.split(","):
        store = args.out / f"quality_{log}_runs"
        store.mkdir(parents=True, exist_ok=True)
        for split in args.splits.split(","):
            data = data_config(args, log, split)
            for seed in seeds_of(args, split):
                for model in args.models.split(","):
                    key = job_key(data, model, seed)
                    path = store / f"{split}_{model}_{seed}.json"
                    if path.is_file() and json.loads(path.read_text()).get("key") == key:
                        results.append({**json.loads(path.read_text()), "reused": True})
                        continue
                    jobs.append({"log": log, "split": split, "model": model, "seed": seed, "data": data,
                                 "key": key, "threads": threads, "path": str(path)})
    print(f"{len(results)} stored runs reused, {len(jobs)} to train ({args.jobs} at a time, {threads} threads each)",
          flush=True)
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done, (job, result) in enumerate(zip(jobs, pool.map(run_one, jobs)), start=1):
            _atomic_write(Path(job["path"]), json.dumps(result))
            print(f"[{done}/{len(jobs)}, {(time.perf_counter() - began) / 60:.0f} min] {job['log']:15s} "
                  f"{job['split']:8s} {job['model']:17s} seed {job['seed']}: test ndcg@10 "
                  f"{result['test']['ndcg@10']:.4f} (best epoch {result['best_epoch']}, "
                  f"{result['train_seconds']:.0f} s)", flush=True)
            results.append(result)
    return results


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


# ----------------------------------------------------------------------------------- analysis
def per_user_ndcg(result: dict, k: int = 10) -> dict[int, float]:
    ranks = np.asarray(result["ranks"], dtype=np.float64)
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2), 0.0)
    users = np.asarray(result["users"])
    totals = np.bincount(users, weights=gains)
    counts = np.bincount(users)
    return {int(u): totals[u] / counts[u] for u in np.flatnonzero(counts)}


def paired_bootstrap(a: dict[int, float], b: dict[int, float], rng: np.random.Generator) -> dict:
    """Mean per-user NDCG@10 difference a - b and its 95% interval, resampling users."""
    users = sorted(set(a) & set(b))
    diff = np.array([a[u] - b[u] for u in users])
    means = diff[rng.integers(0, len(diff), size=(BOOTSTRAP_SAMPLES, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(diff.mean()), "low": float(low), "high": float(high), "users": len(users)}


def time_effect_by_gap(runs: list[dict], rng: np.random.Generator) -> dict:
    """What Δt adds per gap bucket: NDCG@10 of timelstm minus timelstm-no-dt on the same targets
    (per target, mean over seeds), with a paired bootstrap over the bucket's targets (one per user
    in leave-one-out)."""
    from interestevo.metrics import GAP_BUCKETS

    def per_target(model):
        mine = [r for r in runs if r["model"] == model]
        ranks = np.mean([np.where(np.asarray(r["ranks"]) < 10, 1.0 / np.log2(np.asarray(r["ranks"]) + 2), 0.0)
                         for r in mine], axis=0)
        return ranks, np.asarray(mine[0]["gap_seconds"])

    (with_dt, gaps), (without, _) = per_target("timelstm"), per_target("timelstm-no-dt")
    out = {}
    for label, low, high in GAP_BUCKETS:
        keep = (gaps >= low) & (gaps <= (np.inf if high is None else high))
        diff = with_dt[keep] - without[keep]
        if len(diff) == 0:
            out[label] = {"count": 0}
            continue
        means = diff[rng.integers(0, len(diff), size=(BOOTSTRAP_SAMPLES, len(diff)))].mean(axis=1)
        low_ci, high_ci = np.percentile(means, [2.5, 97.5])
        out[label] = {"count": int(len(diff)), "timelstm": float(with_dt[keep].mean()),
                      "timelstm-no-dt": float(without[keep].mean()), "mean": float(diff.mean()),
                      "low": float(low_ci), "high": float(high_ci)}
    return out


def summarise(results: list[dict], args, log: str) -> dict:
    from interestevo.metrics import GAP_BUCKETS, HISTORY_BUCKETS, metrics_by_gap, metrics_by_history

    rng = np.random.default_rng(0)
    results = [r for r in results if r["log"] == log]
    summary = {"dataset": log, "seeds": {s: seeds_of(args, s) for s in args.splits.split(",")}, "splits": {}}
    for split in args.splits.split(","):
        runs = [r for r in results if r["split"] == split]
        models = [m for m in args.models.split(",") if any(r["model"] == m for r in runs)]
        table, by_gap, by_history, bootstrap = {}, {}, {}, {}
        for model in models:
            mine = [r for r in runs if r["model"] == model]
            table[model] = {m: {"mean": float(np.mean([r["test"][m] for r in mine])),
                                "std": float(np.std([r["test"][m] for r in mine], ddof=1)) if len(mine) > 1 else None}
                            for m in METRICS}
            table[model]["valid_ndcg@10"] = float(np.mean([r["valid"]["ndcg@10"] for r in mine]))
            table[model]["best_epoch"] = [r["best_epoch"] for r in mine]
            table[model]["train_seconds"] = float(np.mean([r["train_seconds"] for r in mine]))
            by_gap[model] = _mean_buckets([metrics_by_gap(np.asarray(r["ranks"]), np.asarray(r["gap_seconds"]))
                                           for r in mine])
            by_history[model] = _mean_buckets([metrics_by_history(np.asarray(r["ranks"]), np.asarray(r["history"]))
                                               for r in mine])
        if "timelstm" in models:
            reference = _seed_mean([per_user_ndcg(r) for r in runs if r["model"] == "timelstm"])
            for model in models:
                if model != "timelstm":
                    other = _seed_mean([per_user_ndcg(r) for r in runs if r["model"] == model])
                    bootstrap[model] = paired_bootstrap(reference, other, rng)
        time_effect = time_effect_by_gap(runs, rng) if {"timelstm", "timelstm-no-dt"} <= set(models) else {}
        summary["splits"][split] = {"models": table, "by_gap": by_gap, "by_history": by_history,
                                    "bootstrap_vs_timelstm": bootstrap, "time_effect_by_gap": time_effect,
                                    "gap_buckets": [b[0] for b in GAP_BUCKETS],
                                    "history_buckets": [b[0] for b in HISTORY_BUCKETS]}
    summary["reference"] = RECBOLE_ML100K if log == "ml100k" and not args.data else {}
    summary["machine"] = machine()
    summary["runs"] = {"count": len(results), "trained_on": sorted({r.get("cpu", "unrecorded CPU") for r in results}),
                       "commits": sorted({r["git"] for r in results}),
                       "reused": sum(bool(r.get("reused")) for r in results),
                       "train_minutes": round(sum(r["train_seconds"] for r in results) / 60, 1)}
    return summary


def _seed_mean(per_user: list[dict[int, float]]) -> dict[int, float]:
    users = set.intersection(*(set(d) for d in per_user))
    return {u: float(np.mean([d[u] for d in per_user])) for u in users}


def _mean_buckets(per_seed: list[dict]) -> dict:
    return {label: {"ndcg@10": float(np.mean([s[label]["ndcg@10"] for s in per_seed])),
                    "count": per_seed[0][label]["count"]} for label in per_seed[0]}


def machine() -> dict:
    import torch

    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "torch": torch.__version__, "git": _git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average": os.getloadavg()}


def _cpu_model() -> str:
    return next((line.split(":", 1)[1].strip() for line in _lscpu().splitlines() if line.startswith("Model name")),
                platform.processor())


def _git_commit() -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return commit + ("+changes" if dirty else "")


def _lscpu() -> str:
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return ""


# ------------------------------------------------------------------------------------ output
def markdown(summary: dict) -> str:
    m, runs = summary["machine"], summary["runs"]
    if runs["reused"]:  # the time of this invocation says nothing about training
        provenance = (f"{runs['reused']} of the {runs['count']} runs were stored ones, reused (trained on "
                      f"{', '.join(runs['trained_on'])}, git {', '.join(runs['commits'])}).")
    else:
        provenance = (f"All {runs['count']} runs trained in this invocation ({runs['train_minutes']:.0f} min of "
                      f"training in all, {summary['jobs']} at a time; the whole invocation {runs['seconds'] / 60:.0f} min).")
    lines = [f"# Recommendation quality: {summary['dataset']}", "",
             f"`{summary['command']}` with the defaults of `interestevo train`, seeds "
             f"{_seeds_text(summary)}; mean ± std over seeds, test split, full ranking over "
             f"all items, seen items not masked. {m['cpu']} ({m['logical_cpus']} logical CPUs), torch {m['torch']}, "
             f"git {m['git']}, {m['date']}. {provenance}", ""]
    for split, part in summary["splits"].items():
        lines += [f"## {split}", "", "| model | " + " | ".join(METRICS) + " | valid NDCG@10 | best epochs |",
                  "|---" * (len(METRICS) + 3) + "|"]
        for model, row in part["models"].items():
            cells = [_mean_std(row[k]) for k in METRICS]
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {row['valid_ndcg@10']:.4f} | "
                         f"{', '.join(map(str, row['best_epoch']))} |")
        if split == "loo":
            for name, ref in summary["reference"].items():
                lines.append(f"| {name} (reference) | " + " | ".join(f"{ref[k]:.4f}" if k in ref else "" for k in METRICS)
                             + " | | |")
        if part["bootstrap_vs_timelstm"]:
            lines += ["", "Paired bootstrap over users (NDCG@10 of timelstm minus the model, per-user mean over "
                      f"seeds, {BOOTSTRAP_SAMPLES} resamples, 95% interval):", "",
                      "| vs | difference | 95% interval | excludes 0 |", "|---|---|---|---|"]
            for model, b in part["bootstrap_vs_timelstm"].items():
                excludes = "yes" if b["low"] > 0 or b["high"] < 0 else "no"
                lines.append(f"| {model} | {b['mean']:+.4f} | [{b['low']:+.4f}, {b['high']:+.4f}] | {excludes} |")
        if part["time_effect_by_gap"]:
            lines += ["", "What Δt adds, by time since the user's previous event: NDCG@10 of timelstm and "
                      "timelstm-no-dt on the same targets (mean over seeds) and the paired bootstrap of the "
                      "difference over the bucket's targets (95% interval):", "",
                      "| gap | targets | timelstm | timelstm-no-dt | difference | 95% interval |",
                      "|---|---|---|---|---|---|"]
            for label, b in part["time_effect_by_gap"].items():
                if b["count"]:
                    lines.append(f"| {label} | {b['count']} | {b['timelstm']:.4f} | {b['timelstm-no-dt']:.4f} | "
                                 f"{b['mean']:+.4f} | [{b['low']:+.4f}, {b['high']:+.4f}] |")
        for title, key, buckets in (("time since the user's previous event", "by_gap", "gap_buckets"),
                                    ("the user's number of prior events", "by_history", "history_buckets")):
            labels = part[buckets]
            counts = next(iter(part[key].values()))
            lines += ["", f"NDCG@10 by {title} (targets per bucket in the header):", "",
                      "| model | " + " | ".join(f"{b} ({counts[b]['count']})" for b in labels) + " |",
                      "|---" * (len(labels) + 1) + "|"]
            for model, row in part[key].items():
                lines.append(f"| {model} | " + " | ".join(
                    "" if row[b]["count"] == 0 else f"{row[b]['ndcg@10']:.4f}" for b in labels) + " |")
        lines.append("")
    return "\n".join(lines)


def _mean_std(value: dict) -> str:
    """``mean ± std``, or the mean alone where one seed ran (no spread to show)."""
    return f"{value['mean']:.4f}" + ("" if value["std"] is None else f" ± {value['std']:.4f}")


def _seeds_text(summary: dict) -> str:
    return "; ".join(f"{split} {', '.join(map(str, seeds))}" for split, seeds in summary["seeds"].items())


def readme_table(summaries: list[dict], command: str) -> str:
    """Test NDCG@10 of the leave-one-out split, a column per log, and per log timelstm's paired
    bootstrap against the strongest other model of the comparison."""
    logs = [s for s in summaries if "loo" in s["splits"]]
    trained = sorted({cpu for s in logs for cpu in s["runs"]["trained_on"]})
    lines = [README_START, "", f"`{command}` (trained on {', '.join(trained)}; {logs[0]['machine']['date']}): "
             f"test NDCG@10, leave-one-out, full ranking, mean ± std over seeds ({_seeds_text(logs[0])}); "
             "the best of the compared models in bold; full tables in " +
             ", ".join(f"[`{s['dataset']}`](bench/results/quality_{s['dataset']}.md)" for s in logs) + ".", "",
             "| model | " + " | ".join(s["dataset"] for s in logs) + " |", "|---" * (1 + len(logs)) + "|"]
    models = list(dict.fromkeys(m for s in logs for m in s["splits"]["loo"]["models"]))
    best = {s["dataset"]: max((m for m in s["splits"]["loo"]["models"] if m in COMPARED),
                              key=lambda m: s["splits"]["loo"]["models"][m]["ndcg@10"]["mean"], default=None)
            for s in logs}
    for model in models:
        cells = []
        for s in logs:
            row = s["splits"]["loo"]["models"].get(model)
            text = _mean_std(row["ndcg@10"]) if row else ""
            cells.append(f"**{text}**" if row and best[s["dataset"]] == model else text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    cells = []
    for s in logs:
        part = s["splits"]["loo"]
        others = [m for m in part["bootstrap_vs_timelstm"] if m in COMPARED]
        if not others:
            cells.append("")
            continue
        rival = max(others, key=lambda m: part["models"][m]["ndcg@10"]["mean"])
        b = part["bootstrap_vs_timelstm"][rival]
        cells.append(f"{b['mean']:+.4f} [{b['low']:+.4f}, {b['high']:+.4f}] vs {rival}")
    lines.append("| timelstm − strongest other (paired bootstrap, 95%) | " + " | ".join(cells) + " |")
    for s in logs:
        for name, ref in s["reference"].items():
            lines.append(f"| {name} (reference, {s['dataset']}) | " + " | ".join(
                f"{ref['ndcg@10']:.4f}" if t is s else "" for t in logs) + " |")
    lines += ["", README_END]
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(summary["splits"])
    fig, axes = plt.subplots(1, 2 * len(splits), figsize=(6 * len(splits) * 2, 4))
    for i, split in enumerate(splits):
        part = summary["splits"][split]
        models = list(part["models"])
        means = [part["models"][m]["ndcg@10"]["mean"] for m in models]
        stds = [part["models"][m]["ndcg@10"]["std"] or 0.0 for m in models]
        ax = axes[2 * i]
        ax.bar(models, means, yerr=stds, capsize=3, color="tab:blue")
        ax.set_title(f"{summary['dataset']} {split}: test NDCG@10")
        ax.tick_params(axis="x", rotation=30)
        ax = axes[2 * i + 1]
        labels = part["gap_buckets"]
        width = 0.8 / len(models)
        for j, model in enumerate(models):
            ax.bar(np.arange(len(labels)) + j * width, [part["by_gap"][model][b]["ndcg@10"] for b in labels],
                   width, label=model)
        ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels)
        ax.set_title(f"{split}: NDCG@10 by time since the previous event")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_readme(table: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        text = head + table + rest.split(README_END, 1)[1]
    else:
        raise SystemExit(f"README.md has no {README_START} ... {README_END} markers for the quality table")
    _atomic_write(readme, text)


def main(argv=None) -> None:
    args = parse_args(argv)
    began = time.perf_counter()
    results = run_all(args)
    command = " ".join(["python bench/quality.py", *(sys.argv[1:] if argv is None else argv)])
    args.out.mkdir(parents=True, exist_ok=True)
    summaries = []
    for log in args.logs.split(","):
        summary = summarise(results, args, log)
        summary.update(command=command, jobs=args.jobs)
        summary["runs"]["seconds"] = round(time.perf_counter() - began, 1)
        prefix = args.out / f"quality_{log}"
        _atomic_write(prefix.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
        text = markdown(summary)
        _atomic_write(prefix.with_suffix(".md"), text + "\n")
        plot(summary, prefix.with_suffix(".png"))
        summaries.append(summary)
        print(text)
    table = readme_table(summaries, command)
    if args.readme:
        write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
