"""Online adaptation: continue training a run's best checkpoint on new events.

The new events are trained on with each user's old history as context; items the run never saw
get new embedding rows (every old item keeps its index and its learned row); the result is a
normal run directory (config, checkpoint, users' store) that ``interestevo serve`` can serve or
reload. It is written in a hidden sibling directory and renamed to ``out`` when complete, so a
failure never leaves a partial run. Ids match the run's by their text (``3`` and ``"3"`` are one
user). A new event older than its user's logged ones takes its place in time order (a late
arrival is still an event); the events after it are then read with it as context.

>>> result = finetune_run("runs/old", "new_events.csv", "runs/new", epochs=1)   # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..checkpoint import atomic_write_text, load_checkpoint, plain_ids
from ..data import DataFormatError, prepare_interactions, read_interactions, read_items
from ..data.cleaning import normalise_ids
from ..models import ModelConfig, as_trained, build_model, model_from_state, split_model_name
from ..train import train_model
from ..run.config import ExperimentConfig
from ..run.dataset import item_labels, load_dataset
from ..run.layout import Run
from ..serving.tracker import build_run_store

log = logging.getLogger("interestevo.experiment")

CATEGORY_EMBEDDING = "items.category_embedding.weight"  # (E, C): one column per category


@dataclass
class FinetuneResult:
    run: Run
    model: str
    new_events: int
    new_items: int
    epochs: int
    best_valid_ndcg: float

    def summary(self) -> str:
        return (f"fine-tuned {self.model} on {self.new_events:,} new events ({self.new_items:,} new items), "
                f"{self.epochs} epoch(s), best validation NDCG@10 {self.best_valid_ndcg:.4f}\n"
                f"run directory: {self.run.root}")


def finetune_run(run_dir: str | Path, data: str | Path, out: str | Path, model: str | None = None,
                 epochs: int = 1, lr: float | None = None) -> FinetuneResult:

    old, out = Run.open(run_dir), Path(out)
    _check_out_is_free(out)
    config = old.settings
    name = model or old.best_model()
    uses_text = split_model_name(name)[1]
    best = old.best_checkpoint(name)
    if not best.is_file():
        raise ValueError(f"--model {name!r}: {old.root} has no checkpoint {best}")
    saved = load_checkpoint(best)
    old_items = list(saved["item_ids"])

    history = load_dataset(config.data, with_text=uses_text).inter
    fresh = read_interactions(data, user_col=config.data.user_col, item_col=config.data.item_col,
                              time_col=config.data.time_col)[["user_id", "item_id", "timestamp"]]
    if len(fresh) == 0:
        raise DataFormatError(f"--data {data}: no events")
    frame = _combined_log(history.to_frame()[["user_id", "item_id", "timestamp"]], fresh)
    items_table = _items_table(config, history, uses_text)
    # Category columns in the order the new run's own item file gives when it is loaded (sorted
    # names), not the old run's: a synthetic run's are in generation order, and serve and the
    # interest forecast name the fine-tuned model's columns by what the new run loads.
    inter = prepare_interactions(frame.drop(columns="new_event"), items_table, dt_unit=config.data.dt_unit,
                                 keep_unlogged_items=uses_text)
    inter = _old_items_first(inter, old_items)
    train, valid = _new_event_targets(inter, frame["new_event"].to_numpy(), data)

    # The structure the checkpoint has (an older run's saved settings may name parts it lacks).
    model_config, _ = as_trained(name, ModelConfig.from_saved(saved["model_config"]), saved["model_state"])
    text = _text_features(config, inter) if uses_text else None
    grown = _grown_model(name, saved, inter, model_config, history.category_names, text)
    train_config = replace(config.train, epochs=epochs, lr=lr or config.train.lr, progress=False)
    extra = {"model_name": name, "model_config": asdict(model_config), "train_config": asdict(train_config),
             "num_items": inter.num_items, "dt_unit": inter.dt_unit, "user_ids": plain_ids(inter.user_ids),
             "item_ids": plain_ids(inter.item_ids), "finetuned_from": str(old.root.resolve())}
    if text is not None:
        extra["text_fingerprint"] = text.fingerprint
    new_items = inter.num_items - (len(old_items) - 1)
    staging = _staging_directory(out)
    try:
        new = Run(staging)
        # The data files first: a log that cannot be saved fails before the training time is spent.
        _write_run(new, out, config, frame.drop(columns="new_event"), items_table, name, train_config)
        result = train_model(grown, inter, train, valid, train_config, name=name,
                             checkpoint_dir=new.checkpoints(name), extra=extra)
        build_run_store(new, inter, name)
        new.write_json(new.root / "finetune.json", {
            "from": str(old.root.resolve()), "model": name, "new_events": int(len(fresh)),
            "new_items": int(new_items), "epochs": epochs, "history": [asdict(r) for r in result.history],
            "best_epoch": result.best_epoch})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish(staging, out)
    return FinetuneResult(Run(out), name, len(fresh), new_items, epochs, float(result.best_score))


def _new_event_targets(inter, new_event: np.ndarray, data) -> tuple[np.ndarray, np.ndarray]:
    """The training and validation targets: the new events (``new_event``, per row of the combined
    log) that follow an earlier event of their user; the latest tenth of them chooses the best epoch."""
    is_new = new_event[inter.source_row]
    targets = np.flatnonzero(is_new & (inter.position_in_user > 0))  # a first event has no context
    if len(targets) == 0:
        raise DataFormatError(f"--data {data}: no new event follows an earlier one of its user, so there is "
                              f"nothing to train on")
    cut = np.quantile(inter.timestamp[targets], 0.9)
    valid, train = targets[inter.timestamp[targets] > cut], targets[inter.timestamp[targets] <= cut]
    if len(valid) == 0 or len(train) == 0:
        valid = train = targets
    return train, valid


def _check_out_is_free(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} exists and is not empty: choose a new directory")


def _staging_directory(out: Path) -> Path:
    """A hidden sibling of ``out`` (same file system, so the final rename is atomic)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))


def _publish(staging: Path, out: Path) -> None:
    """Rename the complete run to ``out`` (replacing it only if it is still an empty directory)."""
    try:
        os.replace(staging, out)
    except OSError as err:
        # Something appeared in --out while training: keep both, lose nothing.
        raise ValueError(f"--out {out} cannot take the fine-tuned run ({err.strerror or err}); it is "
                         f"complete in {staging}: move it where you want it") from None


def _combined_log(old: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """The run's log followed by the new events (``new_event`` marks them), ids of one type per column."""
    alike = {column: _alike_ids(old[column], fresh[column]) for column in ("user_id", "item_id")}
    old = old.assign(**{column: pair[0] for column, pair in alike.items()})
    fresh = fresh.assign(**{column: pair[1] for column, pair in alike.items()})
    frame = pd.concat([old, fresh], ignore_index=True)
    frame["new_event"] = np.r_[np.zeros(len(old), bool), np.ones(len(fresh), bool)]
    return frame


def _alike_ids(old: pd.Series, new: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Both id columns numbers when both are, else both text: ids match by their text across the
    package (user ``3`` of the run's log is ``"3"`` in a file that also has ``"newu"``), and a column
    mixing numbers and strings cannot be saved as Parquet."""
    numeric = [pd.api.types.is_numeric_dtype(c) and not pd.api.types.is_bool_dtype(c) for c in (old, new)]
    if all(numeric):
        return old, new
    return _as_text(old), _as_text(new)


def _as_text(ids: pd.Series) -> pd.Series:
    values, missing = normalise_ids(ids)  # a whole float (3.0, from a column with gaps) reads as "3"
    # Missing ids stay missing, for cleaning to count and drop.
    return pd.Series(values, index=ids.index, dtype=object).astype(str).where(~missing, None)


def _items_table(config: ExperimentConfig, history, uses_text: bool) -> pd.DataFrame | None:
    """Item categories (and texts, for a text model): the run's item file (which may already list
    the new items), else those of the run's own log (synthetic data)."""
    if config.data.items:
        renamed = config.data.item_col if config.data.item_col != "item_id" else None
        table = read_items(config.data.items, item_col=renamed, category_col=config.data.category_col,
                           text_col=config.data.text_col, require_categories=not uses_text)
        return table[["item_id", "categories", "text"] if uses_text else ["item_id", "categories"]]
    table = _categories_table(history)
    if uses_text and history.item_text is not None:
        texts = pd.DataFrame({"item_id": history.item_ids[1:], "text": history.item_text[1:]})
        table = texts.assign(categories=[[] for _ in range(len(texts))]) if table is None else \
            table.merge(texts, on="item_id", how="outer")
    return table


def _text_features(config: ExperimentConfig, inter):
    """Text vectors of every item, old and new, with the run's encoder (old texts from its cache)."""
    from ..text import item_text_features

    if inter.item_text is None or not any(isinstance(t, str) for t in inter.item_text):
        raise DataFormatError("the +text model's items have no texts in the run's item file")
    return item_text_features(inter.item_text, config.data.text_model, config.data.text_cache, progress=False)


def _categories_table(inter) -> pd.DataFrame | None:
    if inter.item_categories is None or inter.category_names is None:
        return None
    names = np.asarray(inter.category_names, dtype=object)
    rows = [(item, list(names[np.flatnonzero(row)])) for item, row in
            zip(inter.item_ids[1:], inter.item_categories[1:])]
    return pd.DataFrame(rows, columns=["item_id", "categories"])


def _old_items_first(inter, old_items: list):
    """The same interactions with item indices renumbered: every old item at its old index, new
    items after them (the checkpoint's rows stay where they were)."""
    ids = [_text(i) for i in inter.item_ids]
    position = {_text(item): index for index, item in enumerate(old_items) if index > 0}
    newcomers = [i for i in range(1, len(ids)) if ids[i] not in position]
    order = np.zeros(len(ids), np.int64)  # order[new index] = current index
    current = {ids[i]: i for i in range(1, len(ids))}
    missing = [item for item in position if item not in current]
    if missing:  # an old item without events in old + new log: keep its row, with no events
        raise DataFormatError(f"the old run's items {missing[:3]} are missing from its own log; cannot keep "
                              f"their indices")
    for item, index in position.items():
        order[index] = current[item]
    order[len(old_items):] = newcomers
    remap = np.empty(len(ids), np.int64)
    remap[order] = np.arange(len(ids))
    changes = {"item": remap[inter.item], "item_ids": np.asarray(inter.item_ids, dtype=object)[order]}
    if inter.item_categories is not None:
        changes["item_categories"] = inter.item_categories[order]
    if inter.item_text is not None:
        changes["item_text"] = inter.item_text[order]
    return replace(inter, **changes)


def _text(value) -> str:
    return str(value.item() if isinstance(value, np.generic) else value)


def _grown_model(name: str, saved: dict, inter, config: ModelConfig, old_categories: list[str] | None,
                 text=None):
    """The checkpoint's model with rows for the new items (their embeddings freshly initialised,
    their categories from the item table, their text vectors from ``text``); its category columns
    are named ``old_categories``, the new model's ``inter.category_names``."""
    old = model_from_state(name, saved["num_items"], config, saved["model_state"])
    categories = None if inter.item_categories is None else torch.from_numpy(inter.item_categories)
    torch.manual_seed(0)
    grown = build_model(name, inter.num_items, config, categories, text)
    state = grown.state_dict()
    rows = saved["num_items"] + 1
    for key, value in old.state_dict().items():
        if key == "items.categories":
            continue  # the new table's, which covers the new items too
        if key == CATEGORY_EMBEDDING:
            state[key] = _columns_by_name(value, old_categories, state[key], inter.category_names)
            continue
        if value.dim() and value.shape[0] == rows and state[key].shape[0] == inter.num_items + 1:
            state[key][:rows] = value  # per-item rows: old items keep theirs
        else:
            state[key] = value
    grown.load_state_dict(state)
    return grown


def _columns_by_name(old: torch.Tensor, old_names: list[str] | None, new: torch.Tensor,
                     new_names: list[str] | None) -> torch.Tensor:
    """``new`` (E, C') with each column of a category ``old`` (E, C) knew replaced by the learned one
    (the two orders differ); a category new to the item table keeps its fresh initialisation."""
    if old_names is None or new_names is None or old.shape[1] != len(old_names):
        raise DataFormatError(f"the run's item categories ({0 if old_names is None else len(old_names)}) are "
                              f"not the {old.shape[1]} its checkpoint was trained with: was its item file "
                              f"changed since?")
    merged, position = new.clone(), {category: i for i, category in enumerate(old_names)}
    for j, category in enumerate(new_names):
        if category in position:
            merged[:, j] = old[:, position[category]]
    return merged


def _write_run(run: Run, final: Path, config: ExperimentConfig, frame: pd.DataFrame,
               items: pd.DataFrame | None, name: str, train_config) -> None:
    """config.json pointing at the combined log (and item categories) saved in the run itself;
    ``run`` is written now and renamed to ``final`` later, so the paths name ``final``."""
    events = run.root / "events.parquet"
    _atomic_frame(frame, events, lambda f, p: f.to_parquet(p, index=False))
    data = replace(config.data, path=str(final.absolute() / events.name), format="parquet", user_col="user_id",
                   item_col="item_id", time_col="timestamp", k_core=0)
    if items is not None:
        table = run.root / "items.csv"
        flat = items.assign(category=["|".join(c) if isinstance(c, (list, tuple)) else "" for c in items["categories"]])
        flat = flat.drop(columns="categories")
        titles = {item: title for item, (title, _) in item_labels(config.data).items() if title}
        if titles:  # what the service shows next to each item
            flat["title"] = [titles.get(_text(item)) for item in flat["item_id"]]
        described = flat["category"] != ""
        if "text" in flat.columns:
            described |= flat["text"].map(lambda t: isinstance(t, str) and bool(t.strip()))
        _atomic_frame(flat[described], table, lambda f, p: f.to_csv(p, index=False))
        data = replace(data, items=str(final.absolute() / table.name), category_col="category",
                       text_col="text" if "text" in flat.columns else data.text_col)
    new_config = replace(config, data=data, train=train_config, models=(name,), out=str(final))
    atomic_write_text(new_config.to_json() + "\n", run.config)
    run.write_json(run.metrics, {})


def _atomic_frame(frame: pd.DataFrame, path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(frame, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


__all__ = ["FinetuneResult", "finetune_run"]
