"""Recommendation quality on real data: every model x seeds x splits, with `interestevo train`'s
defaults, mean ± std, paired bootstrap over users, metrics by gap and by history length.

    python bench/quality.py                  # MovieLens-100K (fetched, see datasets.py), 3 seeds, loo + temporal
    python bench/quality.py --quick          # one seed
    python bench/quality.py --data ratings.dat --items movies.dat --name ml1m

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

MODELS = ("timelstm", "timelstm-no-dt", "lstm", "gru", "sasrec", "pop")
METRICS = ("hit@10", "ndcg@10", "mrr@10", "hit@20", "ndcg@20", "mrr@20")
BOOTSTRAP_SAMPLES = 2000
REVISION = 2  # of the models, training and evaluation as far as results go: stored runs of another are redone
# 2: the CPU op's per-step GEMMs on oneDNN's micro-kernel (float32, AVX-512) round differently
#: RecBole 1.2.1 on MovieLens-100K, leave-one-out, full ranking, as measured (../shared/REAL-DATA.md)
RECBOLE_ML100K = {
    "RecBole GRU4Rec": {"ndcg@10": 0.0613, "hit@10": 0.1262, "ndcg@20": 0.0806},
    "RecBole SASRec": {"ndcg@10": 0.0609, "hit@10": 0.1251, "ndcg@20": 0.0870},
}
README_START, README_END = "<!-- quality:start -->", "<!-- quality:end -->"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="interaction log (default: MovieLens-100K from the recbole wheel)")
    p.add_argument("--format", help="format of --data (default: from the file name)")
    p.add_argument("--items", help="item side file")
    p.add_argument("--name", default=None, help="dataset name in the result files (default: ml100k)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--splits", default="loo,temporal")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the leave-one-out runs")
    p.add_argument("--temporal-seeds", default="0,1,2", help="seeds of the temporal-split runs")
    p.add_argument("--quick", action="store_true", help="one seed (0) everywhere")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (each gets cores / jobs threads)")
    p.add_argument("--out", default=None, help="result path prefix (default: bench/results/quality_<name>)")
    p.add_argument("--readme", action="store_true", help="also write the README's quality table")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = args.temporal_seeds = "0"
    args.name = args.name or ("ml100k" if args.data is None else Path(args.data).stem.replace(".", "_"))
    args.out = Path(args.out or ROOT / "bench" / "results" / f"quality_{args.name}")
    return args


def data_config(args, split: str):
    from interestevo.experiment.config import DataConfig

    if args.data is None:
        from datasets import movielens_100k

        files = movielens_100k()
        return DataConfig(path=str(files.interactions), format=files.format, items=str(files.items), split=split)
    return DataConfig(path=args.data, format=args.format, items=args.items, split=split)


def run_one(job: dict) -> dict:
    """Train and test one (split, model, seed) with the defaults of ``interestevo train``."""
    import torch

    from interestevo.experiment.config import ExperimentConfig
    from interestevo.experiment.dataset import load_dataset
    from interestevo.models import build_model
    from interestevo.train import evaluate, train_model

    torch.set_num_threads(job["threads"])
    config = ExperimentConfig(data=job["data"], models=(job["model"],))
    config.train.seed, config.train.progress = job["seed"], False
    dataset = load_dataset(config.data)
    inter = dataset.inter
    torch.manual_seed(job["seed"])
    categories = None if inter.item_categories is None else torch.from_numpy(inter.item_categories)
    model = build_model(job["model"], inter.num_items, config.model, categories)
    began = time.perf_counter()
    best_epoch = 0
    if job["model"] == "pop":
        model.fit(torch.from_numpy(inter.item[dataset.train_targets]))
    else:
        best_epoch = train_model(model, inter, dataset.train_targets, dataset.valid_targets, config.train,
                                 name=f"{job['split']}/{job['model']}/{job['seed']}").best_epoch
    seconds = time.perf_counter() - began
    valid = evaluate(model, inter, dataset.valid_targets).summary()
    test = evaluate(model, inter, dataset.test_targets)
    timestamps, users = np.asarray(inter.timestamp), np.asarray(inter.user)
    return {**{k: job[k] for k in ("split", "model", "seed", "key")}, "git": _git_commit(), "cpu": _cpu_model(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "best_epoch": best_epoch,
            "train_seconds": round(seconds, 1), "valid": valid, "test": test.summary(),
            "users": users[test.events].tolist(), "ranks": test.ranks.tolist(),
            "gap_seconds": (timestamps[test.events] - timestamps[test.events - 1]).tolist(),
            "history": test.history.tolist()}


def seeds_of(args, split: str) -> list[int]:
    return [int(s) for s in (args.temporal_seeds if split == "temporal" else args.seeds).split(",")]


def job_key(data, model: str, seed: int) -> str:
    """Changes with the defaults, the data and REVISION, so a stored run is reused only when valid."""
    from interestevo.experiment.config import ExperimentConfig

    config = ExperimentConfig(data=data, models=(model,))
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True, default=str).encode())
    digest.update(f"{REVISION}/{model}/{seed}".encode())
    for path in (data.path, data.items):
        if path:
            digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()[:16]


def run_all(args) -> tuple[list[dict], int]:
    """Every (split, model, seed) result, and how many of them were stored ones reused."""
    import torch  # noqa: F401  (fail early without torch)

    store = args.out.parent / f"{args.out.name}_runs"
    store.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(args.jobs, 1))
    jobs, results = [], []
    for split in args.splits.split(","):
        data = data_config(args, split)
        for seed in seeds_of(args, split):
            for model in args.models.split(","):
                key = job_key(data, model, seed)
                path = store / f"{split}_{model}_{seed}.json"
                if path.is_file() and json.loads(path.read_text()).get("key") == key:
                    results.append(json.loads(path.read_text()))
                    continue
                jobs.append({"split": split, "model": model, "seed": seed, "data": data, "key": key,
                             "threads": threads, "path": str(path)})
    print(f"{len(results)} stored runs reused, {len(jobs)} to train ({args.jobs} at a time, {threads} threads each)",
          flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for job, result in zip(jobs, pool.map(run_one, jobs)):
            _atomic_write(Path(job["path"]), json.dumps(result))
            print(f"{job['split']:8s} {job['model']:15s} seed {job['seed']}: test ndcg@10 "
                  f"{result['test']['ndcg@10']:.4f} (best epoch {result['best_epoch']}, "
                  f"{result['train_seconds']:.0f} s)", flush=True)
            results.append(result)
    return results, len(results) - len(jobs)


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


def summarise(results: list[dict], args) -> dict:
    from interestevo.metrics import GAP_BUCKETS, HISTORY_BUCKETS, metrics_by_gap, metrics_by_history

    rng = np.random.default_rng(0)
    summary = {"dataset": args.name, "seeds": {s: seeds_of(args, s) for s in args.splits.split(",")},
               "splits": {}}
    for split in args.splits.split(","):
        runs = [r for r in results if r["split"] == split]
        models = [m for m in args.models.split(",") if any(r["model"] == m for r in runs)]
        table, by_gap, by_history, bootstrap = {}, {}, {}, {}
        for model in models:
            mine = [r for r in runs if r["model"] == model]
            table[model] = {m: {"mean": float(np.mean([r["test"][m] for r in mine])),
                                "std": float(np.std([r["test"][m] for r in mine], ddof=1)) if len(mine) > 1 else 0.0}
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
        summary["splits"][split] = {"models": table, "by_gap": by_gap, "by_history": by_history,
                                    "bootstrap_vs_timelstm": bootstrap,
                                    "gap_buckets": [b[0] for b in GAP_BUCKETS],
                                    "history_buckets": [b[0] for b in HISTORY_BUCKETS]}
    summary["reference"] = RECBOLE_ML100K if args.data is None else {}
    summary["machine"] = machine()
    summary["runs"] = {"count": len(results), "trained_on": sorted({r.get("cpu", "unrecorded CPU") for r in results}),
                       "commits": sorted({r["git"] for r in results})}
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
        provenance = f"All {runs['count']} runs trained in this invocation: {runs['seconds'] / 60:.0f} min."
    lines = [f"# Recommendation quality: {summary['dataset']}", "",
             f"`{summary['command']}` with the defaults of `interestevo train`, seeds "
             f"{_seeds_text(summary)}; mean ± std over seeds, test split, full ranking over "
             f"all items, seen items not masked. {m['cpu']} ({m['logical_cpus']} logical CPUs), torch {m['torch']}, "
             f"git {m['git']}, {m['date']}. {provenance}", ""]
    for split, part in summary["splits"].items():
        lines += [f"## {split}", "", "| model | " + " | ".join(METRICS) + " | valid NDCG@10 | best epochs |",
                  "|---" * (len(METRICS) + 3) + "|"]
        for model, row in part["models"].items():
            cells = [f"{row[k]['mean']:.4f} ± {row[k]['std']:.4f}" for k in METRICS]
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


def _seeds_text(summary: dict) -> str:
    return "; ".join(f"{split} {', '.join(map(str, seeds))}" for split, seeds in summary["seeds"].items())


def readme_table(summary: dict) -> str:
    m = summary["machine"]
    lines = [README_START, "", f"MovieLens-100K, `{summary['command']}` (trained on "
             f"{', '.join(summary['runs']['trained_on'])}; {m['date']}): test "
             f"NDCG@10 / HR@10 / NDCG@20, mean ± std over seeds ({_seeds_text(summary)}), full ranking; "
             f"full tables in [`bench/results/quality_{summary['dataset']}.md`](bench/results/quality_{summary['dataset']}.md).", ""]
    splits = list(summary["splits"])
    lines += ["| model | " + " | ".join(f"{s} NDCG@10 | {s} HR@10 | {s} NDCG@20" for s in splits) + " |",
              "|---" * (1 + 3 * len(splits)) + "|"]
    models = list(summary["splits"][splits[0]]["models"])
    for model in models:
        cells = []
        for s in splits:
            row = summary["splits"][s]["models"].get(model)
            cells += [f"{row[k]['mean']:.4f} ± {row[k]['std']:.4f}" if row else "" for k in ("ndcg@10", "hit@10", "ndcg@20")]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    for name, ref in summary["reference"].items():
        cells = [f"{ref[k]:.4f}" for k in ("ndcg@10", "hit@10", "ndcg@20")] + [""] * 3 * (len(splits) - 1)
        lines.append(f"| {name} (loo, reference) | " + " | ".join(cells) + " |")
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
        stds = [part["models"][m]["ndcg@10"]["std"] for m in models]
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
    results, reused = run_all(args)
    summary = summarise(results, args)
    summary["command"] = " ".join(["python bench/quality.py", *(sys.argv[1:] if argv is None else argv)])
    summary["runs"].update(reused=reused, seconds=round(time.perf_counter() - began, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(args.out.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    text = markdown(summary)
    _atomic_write(args.out.with_suffix(".md"), text + "\n")
    plot(summary, args.out.with_suffix(".png"))
    if args.readme:
        write_readme(readme_table(summary))
    print(text)


if __name__ == "__main__":
    main()
