"""The service's computations: a trained model of a run over a :class:`~.store.UserStore`.

The web layer parses and answers; this module computes (with the same step, gap and top-k
functions as :class:`~.tracker.InterestTracker`, so both give the same recommendations) and the
store persists. The service runs :meth:`ServingEngine.recommend` on its event loop (it only reads)
and everything else on one worker thread; no other two methods may run at once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..data.timestamps import unit_seconds
from ..models import ModelConfig, SequenceRecommender, interest_forecast, model_from_state
from ..models.base import item_logits, scoring_bias
from .popularity import PopularityTimeline
from .store import Changes, Snapshot, StoredEvent, UserRecord, UserStore, last_times
from .tracker import _key, advance, event_rounds, last_seen_rows, time_gaps, top_items

log = logging.getLogger("interestevo.serving")

#: how many of a user's latest events an explanation replays without each of them
EXPLAINED_EVENTS = 50


class OutOfOrderError(ValueError):
    """An event older than its user's last one: the whole request is refused (HTTP 409)."""


class NoEventsError(LookupError):
    """The user has no events, so there is nothing to explain (HTTP 404)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class ServedModel:
    """A run's checkpoint ready to serve: weights, catalogue, time unit and cold-start counts."""

    name: str
    run: Path
    model: SequenceRecommender
    item_ids: np.ndarray  # original id of each item index (0: padding)
    dt_unit: str
    fingerprint: str  # of the weights: a state computed by other weights is recomputed
    popularity: PopularityTimeline
    category_names: list[str] | None = None
    titles: list[str | None] | None = None  # per item index, where the run's item file has titles
    item_index: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.item_index = {_key(item): index for index, item in enumerate(self.item_ids[1:], start=1)}
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
    def needs_seen(self) -> bool:
        """Whether scores depend on when the user last had each item (see :meth:`score`)."""
        return self.model.needs_history

    def item_categories(self, index: int) -> list[str] | None:
        return None if self._categories_of is None else self._categories_of[index]

    def item_title(self, index: int) -> str | None:
        return None if self.titles is None else self.titles[index]


def best_model_name(run: Path) -> str:
    """The neural model with the best test NDCG@10 in the run's metrics.json (else timelstm)."""
    from ..experiment import ExperimentConfig

    config = ExperimentConfig.load(run / "config.json")
    trained = [m for m in config.models if m != "pop" and (run / "checkpoints" / m / "best.pt").is_file()]
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    scored = [m for m in trained if isinstance(metrics.get(m, {}).get("ndcg@10"), (int, float))]
    if scored:
        return max(scored, key=lambda m: metrics[m]["ndcg@10"])
    if trained:
        return "timelstm" if "timelstm" in trained else trained[0]
    raise ValueError(f"{run} has no trained neural model checkpoint (checkpoints/<model>/best.pt)")


def load_served_model(run: str | Path, name: str | None = None) -> ServedModel:
    """The best checkpoint of ``name`` (default: the run's best neural model) and the run's log."""
    from ..experiment import ExperimentConfig, load_dataset

    run = Path(run)
    if not (run / "config.json").is_file():
        raise ValueError(f"{run} is not a run directory (no config.json)")
    config = ExperimentConfig.load(run / "config.json")
    name = name or best_model_name(run)
    path = run / "checkpoints" / name / "best.pt"
    if not path.is_file():
        trained = sorted(p.parent.name for p in (run / "checkpoints").glob("*/best.pt"))
        raise ValueError(f"--model {name!r}: {run} has no checkpoint for it; it has {', '.join(trained) or 'none'}")
    saved = load_checkpoint(path)
    model_config = ModelConfig.from_saved(saved["model_config"]) if "model_config" in saved else config.model
    model = model_from_state(name, saved["num_items"], model_config, saved["model_state"]).eval()
    item_ids = np.asarray(saved["item_ids"], dtype=object)
    dataset = load_dataset(config.data, with_text=config.uses_text)
    inter = dataset.inter
    index = {_key(item): i for i, item in enumerate(item_ids[1:], start=1)}
    log_items = np.array([index.get(_key(item), 0) for item in np.asarray(inter.item_ids, dtype=object)])[inter.item]
    keep = log_items > 0
    popularity = PopularityTimeline(log_items[keep], np.asarray(inter.timestamp)[keep], saved["num_items"])
    return ServedModel(name, run, model, item_ids, saved.get("dt_unit", config.data.dt_unit),
                       weights_fingerprint(model), popularity, inter.category_names, _titles(config, item_ids))


def _titles(config, item_ids: np.ndarray) -> list[str | None] | None:
    """The title of each item index from the run's item file; None when it has no titles."""
    from ..experiment.dataset import item_labels

    labels = item_labels(config.data)
    titles = [None] + [labels.get(_key(item), (None, []))[0] for item in item_ids[1:]]
    return titles if any(titles) else None


def weights_fingerprint(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class RecommendRequest:
    user: str
    at: int
    k: int
    exclude_seen: bool = False


@dataclass
class Event:
    user: str
    item: str
    time: int
    id: str | None = None


class ServingEngine:
    """Events, recommendations, interest, explanations and reloads over one served model and store.

    Its computations run under ``torch.inference_mode`` (no autograd bookkeeping at all: 5-15% less
    CPU per recommendation batch than ``no_grad``, measured on AMD EPYC Zen 5); what they return is
    bytes and Python values, except :meth:`replay`'s states, which only the engine itself reads."""

    def __init__(self, served: ServedModel, store: UserStore):
        self.served, self.store = served, store
        self._swap_lock = threading.Lock()  # a batch of recommendations is scored by one model

    # --------------------------------------------------------------------------- events
    @torch.inference_mode()
    def apply_events(self, events: list[Event]) -> dict:
        """Apply ``events`` in one store transaction: all of them or (OutOfOrderError) none."""
        served = self.served
        unknown = [e.item for e in events if e.item not in served.item_index]
        users = list(dict.fromkeys(e.user for e in events))
        ids: dict[str, list[str]] = {}
        for e in events:
            if e.id is not None:
                ids.setdefault(e.user, []).append(e.id)

        def compute(snapshot: Snapshot):
            fresh, duplicates, taken = [], 0, {u: set(v) for u, v in snapshot.known_ids.items()}
            for e in events:  # a retried event is recognised by its id, before any order check
                if e.id is not None and e.id in taken.setdefault(e.user, set()):
                    duplicates += 1
                    continue
                if e.id is not None:
                    taken[e.user].add(e.id)
                if e.item in served.item_index:
                    fresh.append(e)
            _check_order(fresh, snapshot.records)
            changes = self._advance_users(snapshot, fresh)
            return changes, {"applied": len(fresh), "duplicates": duplicates}

        result = self.store.transact(users, ids, compute)
        result["unknown_items"] = list(dict.fromkeys(unknown))
        return result

    def import_log(self, inter, users_per_request: int = 500) -> tuple[int, int]:
        """Store the users of ``inter`` (a run's log) that the store lacks, with their logged
        events, as if posted ``users_per_request`` users at a time; users the store has are left
        as they are. Returns how many users and events were imported."""
        user_ids = [_key(user) for user in np.asarray(inter.user_ids, dtype=object)]
        items = [_key(item) for item in np.asarray(inter.item_ids, dtype=object)[np.asarray(inter.item)]]
        offsets, times = np.asarray(inter.user_offsets).tolist(), np.asarray(inter.timestamp).tolist()
        users = events = 0
        for first in range(1, len(user_ids), users_per_request):
            chunk = range(first, min(first + users_per_request, len(user_ids)))
            stored = self.store.records([user_ids[u] for u in chunk])
            fresh = [u for u in chunk if user_ids[u] not in stored]
            batch = [Event(user_ids[u], items[i], times[i]) for u in fresh for i in range(offsets[u], offsets[u + 1])]
            if batch:
                users, events = users + len(fresh), events + self.apply_events(batch)["applied"]
        return users, events

    def _advance_users(self, snapshot: Snapshot, events: list[Event]) -> Changes:
        served = self.served
        users = list(dict.fromkeys(e.user for e in events))
        if not users:
            return Changes()
        state, last_time, has = self._states(users, snapshot.records, snapshot.read_events)
        slot = {u: i for i, u in enumerate(users)}
        slots = np.array([slot[e.user] for e in events], np.int64)
        items = np.array([served.item_index[e.item] for e in events], np.int64)
        times = np.array([e.time for e in events], np.int64)
        for number, pick in enumerate(event_rounds(slots)):
            rows = slots[pick]
            dt = time_gaps(times[pick], last_time[rows], has[rows], served.scale)
            if number == 0:  # every user's first event, in the order of ``users``: the whole state
                state = advance(served.model, state, items[pick], dt)
            else:
                index = torch.from_numpy(rows)
                new = advance(served.model, tuple(s[:, index] for s in state), items[pick], dt)
                for full, part in zip(state, new):
                    full[:, index] = part
            last_time[rows], has[rows] = times[pick], True
        changes = Changes(events={user: [] for user in users})
        for e in events:
            changes.events[e.user].append(StoredEvent(e.item, e.time, e.id))
        for user, blob, last in zip(users, served.encode(state), last_time.tolist()):
            record = snapshot.records.get(user)
            before = record.num_events if record else 0
            changes.records[user] = UserRecord(blob, served.fingerprint, last, before + len(changes.events[user]))
        return changes

    def _states(self, users: list[str], records: dict[str, UserRecord], read_events):
        """States (layers, B, hidden), last times and whether each user has events, recomputing
        from the stored events the states another set of weights computed."""
        served = self.served
        stale = [u for u in users if u in records and records[u].fingerprint != served.fingerprint]
        replayed = self.replay({u: read_events(u) for u in stale}) if stale else {}
        # One decode for every row; users without a record (and those replayed) start empty.
        state = served.decode([records[u].state if u in records and u not in replayed else served.empty_state
                               for u in users])
        if replayed:
            for i, user in enumerate(users):
                for full, part in zip(state, replayed.get(user, ())):
                    full[:, i] = part[:, 0]
        known = [records.get(u) for u in users]
        last_time = np.array([r.last_time if r else 0 for r in known], np.int64)
        has = np.array([r is not None and r.num_events > 0 for r in known], bool)
        return state, last_time, has

    @torch.inference_mode()
    def replay(self, histories: dict[str, list[StoredEvent]]) -> dict[str, tuple]:
        """Each user's state under the current weights from their stored events (one batched
        sequence pass; events of items this catalogue lacks are skipped)."""
        served, users = self.served, list(histories)
        if not users:
            return {}
        items, times = [], []
        for user in users:
            known = [e for e in histories[user] if e.item in served.item_index]
            items.append(np.array([served.item_index[e.item] for e in known], np.int64))
            times.append(np.array([e.time for e in known], np.int64))
        states, _, _ = self._run_sequences(items, times, served.model.initial_state(len(users)),
                                           np.zeros(len(users), np.int64), np.zeros(len(users), bool))
        return dict(zip(users, states))

    def _run_sequences(self, items: list[np.ndarray], times: list[np.ndarray], state: tuple,
                       last_time: np.ndarray, has: np.ndarray):
        """Run B sequences from a start state each (rows of ``state``); empty ones keep theirs.
        Returns the states (as a tuple of (layers, 1, hidden) per row), last times, has-events."""
        served, rows = self.served, len(items)
        lengths = np.array([len(x) for x in items], np.int64)
        out_last, out_has = last_time.copy(), has.copy()
        results = [tuple(s[:, r:r + 1] for s in state) for r in range(rows)]
        busy = np.flatnonzero(lengths > 0)
        if len(busy):
            width = int(lengths.max())
            item_pad = np.zeros((len(busy), width), np.int64)
            dt_pad = np.zeros((len(busy), width), np.float32)
            for j, r in enumerate(busy):
                t = times[r]
                prev = np.concatenate([[last_time[r]], t[:-1]])
                first_has = np.concatenate([[has[r]], np.ones(len(t) - 1, bool)])
                item_pad[j, :len(t)] = items[r]
                dt_pad[j, :len(t)] = time_gaps(t, prev, first_has, served.scale).numpy()
                out_last[r], out_has[r] = t[-1], True
            rows_t = torch.from_numpy(busy)
            _, new = served.model(torch.from_numpy(item_pad), torch.from_numpy(dt_pad),
                                  torch.from_numpy(lengths[busy]), tuple(s[:, rows_t] for s in state))
            for j, r in enumerate(busy):
                results[r] = tuple(s[:, j:j + 1] for s in new)
        return results, out_last, out_has

    # ------------------------------------------------------------------ recommendations
    @torch.inference_mode()
    def recommend(self, requests: list[RecommendRequest]) -> list[dict | Exception]:
        """Answers for many requests with one model call; a failed request is its exception. It
        only reads, so it may run beside the other methods, except :meth:`swap`, which waits for it."""
        with self._swap_lock:
            return self._recommend(requests)

    def _recommend(self, requests: list[RecommendRequest]) -> list[dict | Exception]:
        served = self.served
        users = list(dict.fromkeys(r.user for r in requests))
        records = self.store.records(users)
        warm_users = [u for u in users if u in records]
        state, last_time, _ = self._states(warm_users, records, self.store.events)
        row = {u: i for i, u in enumerate(warm_users)}
        want_seen = list(dict.fromkeys(r.user for r in requests if r.exclude_seen or
                                       (served.needs_seen and r.user in records)))
        seen = self.store.seen_items(want_seen) if want_seen else {}
        answers: list[dict | Exception] = [None] * len(requests)
        warm = []
        for n, request in enumerate(requests):
            if request.user not in records:
                answers[n] = self._cold_start(request, seen.get(request.user, {}))
            elif request.at < last_time[row[request.user]]:
                answers[n] = ValueError(f"at={request.at} is before user {request.user!r}'s last event at "
                                        f"{int(last_time[row[request.user]])}")
            else:
                warm.append(n)
        if warm:
            rows = np.array([row[requests[n].user] for n in warm], np.int64)
            at = np.array([requests[n].at for n in warm], np.int64)
            delta = time_gaps(at, last_time[rows], np.ones(len(rows), bool), served.scale)
            logits = served.score(served.model.project(tuple(s[:, torch.from_numpy(rows)] for s in state),
                                                       delta), at, [seen.get(requests[n].user, {}) for n in warm])
            plain = [j for j, n in enumerate(warm) if not requests[n].exclude_seen]
            if plain:  # one top-k for every request that excludes nothing, cut to each one's k
                scores, index = top_items(logits[plain], max(requests[warm[j]].k for j in plain))
                scores, index = scores.tolist(), index.tolist()
                for row, j in enumerate(plain):
                    request = requests[warm[j]]
                    answers[warm[j]] = self._answer(request, int(last_time[rows[j]]), index[row][:request.k],
                                                    scores[row][:request.k], cold=False)
            for j in sorted(set(range(len(warm))) - set(plain)):
                request = requests[warm[j]]
                excluded = [{served.item_index[i] for i in seen.get(request.user, ()) if i in served.item_index}]
                scores, index = top_items(logits[j:j + 1], request.k, excluded)
                answers[warm[j]] = self._answer(request, int(last_time[rows[j]]), index[0].tolist(),
                                                scores[0].tolist(), cold=False)
        return answers

    def _cold_start(self, request: RecommendRequest, seen: set[str]) -> dict:
        excluded = {self.served.item_index[i] for i in seen if i in self.served.item_index}
        index, counts = self.served.popularity.top(request.at, request.k, excluded)
        return self._answer(request, None, index.tolist(), [float(c) for c in counts], cold=True)

    def _answer(self, request: RecommendRequest, last: int | None, index: list[int], scores: list[float],
                cold: bool) -> dict:
        served = self.served
        items = []
        for i, score in zip(index, scores):
            entry = {"item": _plain(served.item_ids[i]), "score": score}
            title = served.item_title(i)
            if title is not None:
                entry["title"] = title
            categories = served.item_categories(i)
            if categories is not None:
                entry["categories"] = categories
            items.append(entry)
        hours = None if last is None else (request.at - last) / 3600.0
        return {"user": request.user, "at": request.at, "hours_since_last_event": hours, "model": served.name,
                "cold_start": cold, "items": items}

    # ------------------------------------------------------------------------- interest
    @torch.inference_mode()
    def interest(self, user: str, at: int) -> dict:
        """The forecast distribution over categories at ``at`` (cold start: the log's before ``at``)."""
        served = self.served
        categories = served.model.items.categories
        if categories is None or served.category_names is None:
            raise ValueError(f"model {served.name!r} has no item categories, so it forecasts no interest over them")
        record = self.store.records([user]).get(user)
        if record is None:
            counts = torch.from_numpy(served.popularity.counts_before(at)).float()
            total = counts.sum()
            forecast = (counts @ categories.float()) / total if total > 0 else torch.zeros(categories.shape[1])
        else:
            if at < record.last_time:
                raise ValueError(f"at={at} is before user {user!r}'s last event at {record.last_time}")
            state, last_time, has = self._states([user], {user: record}, self.store.events)
            delta = time_gaps(np.array([at]), last_time, has, served.scale)
            seen = self.store.seen_items([user]) if served.needs_seen else {}
            logits = served.score(served.model.project(state, delta), np.array([at]), [seen.get(user, {})])
            forecast = interest_forecast(logits, categories)[0]
        return {"user": user, "at": at, "model": served.name, "cold_start": record is None,
                "hours_since_last_event": None if record is None else (at - record.last_time) / 3600.0,
                "interest": dict(zip(served.category_names, forecast.tolist()))}

    # ---------------------------------------------------------------------- explanation
    @torch.inference_mode()
    def explain(self, user: str, item: str, at: int) -> dict:
        """Each recent event's exact contribution to ``item``'s score at ``at`` (the score minus the
        score of the history without that event, all variants in one batched pass), and the part
        due to the time elapsed since the last event."""
        served = self.served
        if item not in served.item_index:
            raise ValueError(f"item {item!r} is not in model {served.name!r}'s catalogue")
        target = served.item_index[item]
        record = self.store.records([user]).get(user)
        if record is None:
            raise NoEventsError(f"user {user!r} has no events, so there is nothing to explain")
        if at < record.last_time:
            raise ValueError(f"at={at} is before user {user!r}'s last event at {record.last_time}")
        events = [e for e in self.store.events(user) if e.item in served.item_index]
        recent = events[-EXPLAINED_EVENTS:]
        anchor, anchor_last, anchor_has = self._run_sequences(
            [np.array([served.item_index[e.item] for e in events[:-len(recent)]], np.int64)],
            [np.array([e.time for e in events[:-len(recent)]], np.int64)],
            served.model.initial_state(1), np.zeros(1, np.int64), np.zeros(1, bool))
        items = np.array([served.item_index[e.item] for e in recent], np.int64)
        times = np.array([e.time for e in recent], np.int64)
        keep = [np.ones(len(recent), bool)] + [np.arange(len(recent)) != j for j in range(len(recent))]
        start = tuple(s.expand(-1, len(keep), -1).contiguous() for s in
                      (torch.cat(parts, dim=1) for parts in zip(*anchor)))
        states, last, has = self._run_sequences([items[m] for m in keep], [times[m] for m in keep], start,
                                                np.repeat(anchor_last, len(keep)), np.repeat(anchor_has, len(keep)))
        state = tuple(torch.cat(parts, dim=1) for parts in zip(*states))
        delta = time_gaps(np.full(len(keep), at), last, has, served.scale)
        older = last_times(events[:-len(recent)])
        variants = [{**older, **last_times(e for e, kept in zip(recent, mask) if kept)} for mask in keep]
        logits = served.score(served.model.project(state, delta), np.full(len(keep), at), variants)
        scores = logits[:, target].float()
        # The score itself, and the elapsed-time part, from the stored state the recommendations use.
        stored, stored_last, _ = self._states([user], {user: record}, self.store.events)
        now_and_then = time_gaps(np.array([at, stored_last[0]]), np.repeat(stored_last, 2), np.ones(2, bool),
                                 served.scale)
        both = served.score(served.model.project(tuple(s.expand(-1, 2, -1) for s in stored), now_and_then),
                            np.array([at, stored_last[0]]), [last_times(events)] * 2)
        score, right_after = both[0, target].item(), both[1, target].item()
        contributions = (scores[0] - scores[1:]).tolist()
        return {"user": user, "item": _plain(served.item_ids[target]), "at": at, "model": served.name,
                "score": score, "elapsed_time_effect": score - right_after,
                "events": [{"item": _plain(served.item_ids[served.item_index[e.item]]), "time": e.time, "contribution": c}
                           for e, c in zip(recent, contributions)]}

    # ---------------------------------------------------------------------- maintenance
    def forget(self, user: str) -> bool:
        return self.store.delete(user)

    def swap(self, served: ServedModel) -> None:
        with self._swap_lock:
            self.served = served

    @torch.inference_mode()
    def recompute(self, users: list[str]) -> tuple[int, int]:
        """Recompute, under the current weights, the states of those ``users`` computed by others;
        returns how many changed, and how many of their stored events name items the current
        catalogue lacks (a replay skips them). One transaction, so concurrent events are never lost."""
        served = self.served

        def compute(snapshot: Snapshot):
            stale = {u: r for u, r in snapshot.records.items() if r.fingerprint != served.fingerprint}
            histories = {u: snapshot.read_events(u) for u in stale}
            replayed = self.replay(histories)
            changes = Changes()
            for user, record in stale.items():
                changes.records[user] = UserRecord(served.encode(replayed[user])[0], served.fingerprint,
                                                   record.last_time, record.num_events)
            unknown = sum(e.item not in served.item_index for events in histories.values() for e in events)
            return changes, (len(stale), unknown)

        return self.store.transact(users, {}, compute)


def _check_order(events: list[Event], records: dict[str, UserRecord]) -> None:
    last = {u: r.last_time for u, r in records.items() if r.num_events}
    for e in events:
        before = last.get(e.user)
        if before is not None and e.time < before:
            raise OutOfOrderError(f"event of user {e.user!r} at time {e.time} is older than that user's last "
                                  f"event at {before}; events must arrive in time order (nothing was applied)")
        last[e.user] = e.time


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


__all__ = ["EXPLAINED_EVENTS", "Event", "NoEventsError", "OutOfOrderError", "RecommendRequest",
           "ServedModel", "ServingEngine", "best_model_name", "load_served_model", "weights_fingerprint"]
