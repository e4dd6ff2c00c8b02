"""A trained model of a run, ready to serve: weights, catalogue, time unit, cold-start counts."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.timestamps import unit_seconds
from ..models import SequenceRecommender
from ..models.base import item_logits, scoring_bias
from ..run.layout import Run
from .popularity import PopularityTimeline
from .steps import item_key, last_seen_rows


@dataclass
class ServedModel:
    """A run's checkpoint ready to serve: weights, catalogue, time unit and cold-start counts."""

    name: str
    run: Path | None  # None for a model given in Python
    model: SequenceRecommender
    item_ids: np.ndarray  # original id of each item index (0: padding)
    dt_unit: str
    fingerprint: str  # of the weights: a state computed by other weights is recomputed
    popularity: PopularityTimeline
    category_names: list[str] | None = None
    titles: list[str | None] | None = None  # per item index, where the run's item file has titles
    item_index: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.item_index = {item_key(item): index for index, item in enumerate(self.item_ids[1:], start=1)}
        self.scale = unit_seconds(self.dt_unit)
        self.state_shapes = [tuple(s.shape) for s in self.model.initial_state(1)]
        self._state_sizes = [int(np.prod(shape)) for shape in self.state_shapes]
        self._state_bytes = 4 * sum(self._state_sizes)
        self.empty_state = self.encode(self.model.initial_state(1))[0]  # of a user without events
        self._item_table = None
        self.model.prepare_scoring()
        if type(self.model).score is SequenceRecommender.score:
            # Item vectors only change with the weights: computed once, not per request (the same
            # expression as SequenceRecommender.score, so the scores are the same bits).
            with torch.no_grad():
                vectors, bias = self.model.items.lookup()
                self._item_table = (vectors.detach(), scoring_bias(bias.detach(), self.model.items.excluded()))
        categories = self.model.items.categories
        self._categories_of = None
        if categories is not None and self.category_names is not None:  # once, not per answer
            if len(self.category_names) != categories.shape[1]:
                raise ValueError(f"{self.run}: its item file names {len(self.category_names)} categories, the "
                                 f"checkpoint of {self.name} has {categories.shape[1]}; was the item file changed?")
            self._categories_of = [[self.category_names[c] for c in np.flatnonzero(row)]
                                   for row in categories.numpy()]

    @classmethod
    def from_run(cls, run: Run, name: str | None = None) -> "ServedModel":
        """The best checkpoint of ``name`` (default: the run's best model by validation), with the
        run's log for cold starts and its item file's titles and categories."""
        name = name or run.best_model()
        model, saved = run.load_model(name)
        item_ids = np.asarray(saved["item_ids"], dtype=object)
        inter = run.dataset().inter
        index = {item_key(item): i for i, item in enumerate(item_ids[1:], start=1)}
        log_items = np.array([index.get(item_key(item), 0)
                              for item in np.asarray(inter.item_ids, dtype=object)])[inter.item]
        keep = log_items > 0
        popularity = PopularityTimeline(log_items[keep], np.asarray(inter.timestamp)[keep], saved["num_items"])
        return cls(name, run.root, model, item_ids, saved["dt_unit"],
                   weights_fingerprint(model), popularity, inter.category_names, _titles(run, item_ids))

    @classmethod
    def from_model(cls, model: SequenceRecommender, item_ids, *, dt_unit: str = "hours", name: str = "model",
                   inter=None, category_names: list[str] | None = None) -> "ServedModel":
        """A model trained in Python (moved to the CPU, in eval mode); ``item_ids``: the original id of
        each item index, 0 the padding (``Interactions.item_ids``); ``inter`` (a log over the same
        items) gives cold starts their popularity counts (without it, a user without events gets none)."""
        items = np.zeros(0, np.int64) if inter is None else np.asarray(inter.item)
        times = np.zeros(0, np.int64) if inter is None else np.asarray(inter.timestamp)
        popularity = PopularityTimeline(items, times, model.num_items)
        names = category_names or (None if inter is None else inter.category_names)
        model = model.cpu().eval()
        return cls(name, None, model, np.asarray(item_ids, dtype=object), dt_unit, weights_fingerprint(model),
                   popularity, names)

    def encode(self, state: tuple) -> list[bytes]:
        """One bytes value per row of a (layers, B, hidden) state: what :meth:`decode` reads."""
        rows = np.concatenate([s.detach().float().permute(1, 0, 2).reshape(s.shape[1], -1).numpy()
                               for s in state], axis=1)
        flat, width = rows.tobytes(), self._state_bytes  # one copy, then a slice per row
        return [flat[start:start + width] for start in range(0, len(flat), width)]

    def decode(self, blobs: list[bytes]) -> tuple:
        """(layers, B, hidden) state tensors from B encoded states."""
        flat = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), self._state_bytes // 4)
        parts, start = [], 0
        for size, (layers, _, hidden) in zip(self._state_sizes, self.state_shapes):
            block = flat[:, start:start + size].reshape(len(blobs), layers, hidden)
            parts.append(torch.from_numpy(block.transpose(1, 0, 2).copy()))
            start += size
        return tuple(parts)

    def score(self, queries: torch.Tensor, at: np.ndarray, seen: list[dict[str, int]] | None) -> torch.Tensor:
        """(B, num_items + 1) logits, the padding item at -inf: ``model.score`` with cached item vectors,
        at request times ``at`` (B,) for users who had ``seen`` (per row: item id -> last unix seconds;
        needed only when :attr:`needs_seen`)."""
        at = torch.as_tensor(np.asarray(at, dtype=np.int64))
        last_seen = None
        if self.needs_seen:
            last_seen = last_seen_rows(self.model, [{self.item_index[i]: t for i, t in row.items()
                                                     if i in self.item_index} for row in seen], at.device)
        if self._item_table is None:
            return self.model.score(queries, at, last_seen)
        vectors, bias = self._item_table
        return self.model.add_context_scores(item_logits(queries, vectors, bias), queries, at, last_seen)

    @property
    def log_end(self) -> int | None:
        """Unix seconds of the last event of the log the model was served with: the data's "now"."""
        return int(self.popularity.times.max()) if len(self.popularity.times) else None

    @property
    def needs_seen(self) -> bool:
        """Whether scores depend on when the user last had each item (see :meth:`score`)."""
        return self.model.needs_history

    def item_categories(self, index: int) -> list[str] | None:
        return None if self._categories_of is None else self._categories_of[index]

    def item_title(self, index: int) -> str | None:
        return None if self.titles is None else self.titles[index]


def _titles(run: Run, item_ids: np.ndarray) -> list[str | None] | None:
    """The title of each item index from the run's item file; None when it has no titles."""
    labels = run.item_labels()
    titles = [None] + [labels.get(item_key(item), (None, []))[0] for item in item_ids[1:]]
    return titles if any(titles) else None


def weights_fingerprint(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
