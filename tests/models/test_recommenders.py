from types import SimpleNamespace

import pytest
import torch

from interestevo.models import (EXTRA_MODEL_NAMES, MODEL_NAMES, ModelConfig, build_model, interest_forecast,
                                model_from_state)
from interestevo.models.item_activity import ItemActivity
from interestevo.models.repeat import RepeatScores

NUM_ITEMS, CATEGORIES = 30, 4
NEURAL = [m for m in MODEL_NAMES + EXTRA_MODEL_NAMES if m != "pop"]


def make(name, num_layers=1, categories=True):
    torch.manual_seed(0)
    cats = torch.zeros(NUM_ITEMS + 1, CATEGORIES)
    cats[torch.arange(1, NUM_ITEMS + 1), torch.arange(NUM_ITEMS) % CATEGORIES] = 1.0
    model = build_model(name, NUM_ITEMS, ModelConfig(embedding_size=8, hidden_size=12, num_layers=num_layers,
                                                      dropout=0.0), cats if categories else None)
    if name == "pop":
        model.fit(torch.randint(1, NUM_ITEMS + 1, (200,)))
    return model.eval()


def sequences(batch=3, steps=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    items = torch.randint(1, NUM_ITEMS + 1, (batch, steps), generator=g)
    dt = torch.rand(batch, steps, generator=g) * 50
    lengths = torch.tensor([steps, steps - 3, 2])[:batch]
    return items, dt, lengths


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_scores_cover_catalogue_and_never_padding(name):
    model = make(name)
    items, dt, lengths = sequences()
    queries, state = model(items, dt, lengths, model.initial_state(3))
    logits = model.score(queries, torch.zeros(3, 9, dtype=torch.long), torch.full((3, 9, NUM_ITEMS + 1), -1))
    assert logits.shape == (3, 9, NUM_ITEMS + 1)
    assert torch.isneginf(logits[..., 0]).all() and torch.isfinite(logits[..., 1:]).all()
    forecast = interest_forecast(logits, model.items.categories)
    assert torch.allclose(forecast.sum(-1), torch.ones(3, 9), atol=1e-5)


@pytest.mark.parametrize("name", NEURAL)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_windows_with_carried_state_equal_one_pass(name, num_layers):
    model = make(name, num_layers)
    items, dt, lengths = sequences()
    whole, state = model(items, dt, lengths, model.initial_state(3))
    # Rows still active after 4 steps are a prefix of the batch (lengths are non-increasing).
    first, mid = model(items[:, :4], dt[:, :4], lengths.clamp(max=4), model.initial_state(3))
    active = int((lengths > 4).sum())
    second, end = model(items[:active, 4:], dt[:active, 4:], lengths[:active] - 4,
                        tuple(s[:, :active] for s in mid))
    torch.testing.assert_close(first, whole[:, :4], atol=1e-5, rtol=1e-5)
    for row in range(active):
        n = int(lengths[row]) - 4
        torch.testing.assert_close(second[row, :n], whole[row, 4:4 + n], atol=1e-5, rtol=1e-5)
    for s_whole, s_end in zip(state, end):
        torch.testing.assert_close(s_end, s_whole[:, :active], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NEURAL)
def test_query_at_j_depends_only_on_earlier_events(name):
    model = make(name)
    items, dt, lengths = sequences(batch=1, steps=6)
    changed = items.clone()
    changed[0, 3] = items[0, 3] % NUM_ITEMS + 1  # alter event 3 only
    a, _ = model(items, dt, lengths, model.initial_state(1))
    b, _ = model(changed, dt, lengths, model.initial_state(1))
    torch.testing.assert_close(a[:, :4], b[:, :4])  # queries 0..3 never see event 3
    assert not torch.allclose(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("name", NEURAL)
def test_project_with_the_next_gap_equals_the_next_query(name):
    # Serving's projection and training's per-position query are the same computation.
    model = make(name, num_layers=2)
    items, dt, lengths = sequences(batch=2, steps=5)
    lengths = torch.tensor([5, 5])
    queries, _ = model(items, dt, lengths, model.initial_state(2))
    _, state = model(items[:, :3], dt[:, :3], torch.tensor([3, 3]), model.initial_state(2))
    torch.testing.assert_close(model.project(state, dt[:, 3]), queries[:, 3], atol=1e-5, rtol=1e-5)


def test_only_the_time_aware_model_reacts_to_the_gap():
    items, dt, lengths = sequences(batch=1, steps=5)
    for name, reacts in [("timelstm", True), ("timelstm-no-dt", False), ("lstm", False), ("gru", False),
                         ("sasrec", False), ("tisasrec", False)]:
        model = make(name)
        _, state = model(items, dt, torch.tensor([5]), model.initial_state(1))
        hour, month = model.project(state, torch.tensor([1.0])), model.project(state, torch.tensor([720.0]))
        assert torch.allclose(hour, month) != reacts, name


def test_ablation_has_the_same_parameters_as_the_time_aware_model():
    a, b = make("timelstm"), make("timelstm-no-dt")
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]


def test_models_work_without_categories():
    model = make("timelstm", categories=False)
    items, dt, lengths = sequences()
    queries, _ = model(items, dt, lengths, model.initial_state(3))
    never = torch.full((3, 9, NUM_ITEMS + 1), -1)
    assert model.score(queries, torch.zeros(3, 9, dtype=torch.long), never).shape == (3, 9, NUM_ITEMS + 1)
    assert model.items.categories is None


def test_unknown_model_name_is_rejected():
    with pytest.raises(ValueError, match="unknown model 'transformer'"):
        build_model("transformer", 5, ModelConfig())


def test_popularity_ranks_by_training_counts():
    model = build_model("pop", 4, ModelConfig())
    model.fit(torch.tensor([2, 2, 2, 3, 3, 1]))
    logits = model.score(torch.zeros(1, 1))
    assert logits[0, 1:].argsort(descending=True).tolist() == [1, 2, 0, 3]  # items 2, 3, 1, 4


@pytest.mark.parametrize("name", ["sasrec", "tisasrec", "timelstm", "timelstm-no-dt"])
@pytest.mark.parametrize("window", [1, 3, 7])
def test_attention_reads_the_same_history_in_windows_of_any_size(name, window):
    # The carried memory makes a short max_history window slide exactly, one event at a time too.
    torch.manual_seed(0)
    model = build_model(name, NUM_ITEMS, ModelConfig(embedding_size=8, max_history=4)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # the zero-initialised biases matter too
    items, dt, lengths = sequences(batch=3, steps=11)
    items[1, 8:], items[2, 2:] = 0, 0
    whole, final = model(items, dt, lengths, model.initial_state(3))
    state = model.initial_state(3)
    for start in range(0, 11, window):
        active = int((lengths > start).sum())
        state = tuple(s[:, :active] for s in state)
        part, state = model(items[:active, start:start + window], dt[:active, start:start + window],
                            (lengths[:active] - start).clamp(max=window), state)
        for row in range(active):
            n = min(int(lengths[row]) - start, window)
            torch.testing.assert_close(part[row, :n], whole[row, start:start + n], atol=1e-5, rtol=1e-5)
    for carried, once in zip(state, final):
        torch.testing.assert_close(carried, once[:, :active], atol=1e-5, rtol=1e-5)


def test_timelstm_fuses_its_attention_encoder_by_the_gap_to_the_request():
    """The gate between the attention's view and the TimeLSTM's reads the gap to the request, so the
    request time matters beyond the TimeLSTM's own decay; the attention sees the last max_history
    events only."""
    torch.manual_seed(0)
    config = ModelConfig(embedding_size=8, hidden_size=8, max_history=3, attention_layers=1, item_activity=False,
                         repeat_scores=False)
    model = build_model("timelstm", NUM_ITEMS, config).eval()
    items, dt, lengths = sequences(batch=1, steps=6)
    with torch.no_grad():
        model.gap_gate.copy_(torch.randn_like(model.gap_gate) * 3)
        model.rnn.decay_rate_l0.fill_(-30.0)  # the TimeLSTM itself (almost) ignores the gap
        _, state = model(items, dt, lengths, model.initial_state(1))
        hour, month = (model.project(state, torch.tensor([t])) for t in (1.0, 720.0))
        assert not torch.allclose(hour, month)
        model.gap_gate.zero_()
        torch.testing.assert_close(model.project(state, torch.tensor([1.0])), model.project(state, torch.tensor([720.0])))
        model.gate.weight.zero_()
        model.gate.bias.fill_(-30.0)  # the attention's view only
        changed = items.clone()
        changed[0, 0] = items[0, 0] % NUM_ITEMS + 1
        a, _ = model(items, dt, lengths, model.initial_state(1))
        b, _ = model(changed, dt, lengths, model.initial_state(1))
    torch.testing.assert_close(a[:, 5:], b[:, 5:])  # event 5's query reads events 2..4 only
    assert not torch.allclose(a[:, 1:4], b[:, 1:4])


def test_attention_sees_only_the_last_max_history_events_in_one_block():
    model = build_model("sasrec", NUM_ITEMS, ModelConfig(embedding_size=8, max_history=3,
                                                          attention_layers=1)).eval()
    items, dt, lengths = sequences(batch=1, steps=6)
    changed = items.clone()
    changed[0, 0] = items[0, 0] % NUM_ITEMS + 1
    a, _ = model(items, dt, lengths, model.initial_state(1))
    b, _ = model(changed, dt, lengths, model.initial_state(1))
    assert not torch.allclose(a[:, 1:4], b[:, 1:4])  # events 1..3 read event 0
    torch.testing.assert_close(a[:, 4:], b[:, 4:])  # event 4 reads events 1..3 only


def test_time_interval_bias_only_in_the_time_aware_attention():
    items, dt, lengths = sequences(batch=1, steps=6)
    for name, reacts in [("sasrec", False), ("tisasrec", True)]:
        torch.manual_seed(0)
        model = build_model(name, NUM_ITEMS, ModelConfig(embedding_size=8)).eval()
        if model.encoder.time_bias is not None:
            with torch.no_grad():
                model.encoder.time_bias.normal_()
        a, _ = model(items, dt, lengths, model.initial_state(1))
        b, _ = model(items, dt * 100, lengths, model.initial_state(1))
        assert torch.allclose(a, b) != reacts, name


def activity_model(**config):
    torch.manual_seed(0)
    config = ModelConfig(embedding_size=8, hidden_size=8, repeat_scores=False, **config)
    model = build_model("timelstm", 4, config).eval()
    day = 86_400
    # item 1: busy long ago; item 2: busy in the last day before t = 100 days; item 3: never
    items = [1] * 20 + [2] * 5
    times = [day * 10 + i for i in range(20)] + [day * 100 - 7200 + i for i in range(5)]
    model.observe_log(type("Log", (), {"item": items, "timestamp": times})())
    return model, day


def test_item_activity_counts_only_events_before_the_request_hour():
    model, day = activity_model()
    features = model.activity.features(torch.tensor([day * 100, day * 100 - 7200, day * 5]))
    day_window, all_time = features[:, 0].expm1().round(), features[:, -1].expm1().round()
    assert day_window[0].tolist() == [0, 0, 5, 0, 0] and all_time[0].tolist() == [0, 20, 5, 0, 0]
    assert all_time[1].tolist() == [0, 20, 0, 0, 0]  # events of the request's own hour never count
    assert all_time[2].tolist() == [0, 0, 0, 0, 0]  # nothing had happened yet


def test_item_activity_moves_scores_with_the_request_time_and_survives_a_reload():
    model, day = activity_model()
    with torch.no_grad():
        model.activity.weights.bias.fill_(1.0)
    query = torch.randn(1, 8)
    recent, early = model.score(query, torch.tensor([day * 100])), model.score(query, torch.tensor([day * 5]))
    assert (recent - early)[0, 2] > 1.0 and torch.allclose((recent - early)[0, 3:], torch.zeros(2))
    rebuilt = build_model("timelstm", 4, ModelConfig(embedding_size=8, hidden_size=8, repeat_scores=False)).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.score(query, torch.tensor([day * 100])), recent)
    sampled = model.score_items(query, torch.tensor([2, 3]), torch.tensor([day * 100]))
    torch.testing.assert_close(sampled, recent[:, [2, 3]])


def test_a_model_with_item_activity_needs_the_request_time():
    model, _ = activity_model()
    with pytest.raises(ValueError, match="pass at="):
        model.score(torch.randn(1, 8))
    with pytest.raises(ValueError, match="pass last_seen="):
        build_model("timelstm", 4, ModelConfig(embedding_size=8)).score(torch.randn(1, 8), torch.tensor([0]))
    plain = build_model("timelstm", 4, ModelConfig(embedding_size=8, hidden_size=8, item_activity=False,
                                                    repeat_scores=False))
    assert plain.score(torch.randn(1, 8)).shape == (1, 5)


@pytest.mark.parametrize("name", ["timelstm", "gru", "sasrec"])
def test_scoring_no_query_rows_gives_no_rows(name):
    # A training window may hold no target (fine-tuning trains on the new events only).
    model = make(name)
    model.observe_log(type("Log", (), {"item": [1, 2], "timestamp": [0, 3600]})())  # item activity's tables
    none = torch.zeros(0, 8)  # queries of make's embedding size
    at, seen = torch.zeros(0, dtype=torch.long), torch.full((0, NUM_ITEMS + 1), -1)
    assert model.score(none, at, seen).shape == (0, NUM_ITEMS + 1)
    assert model.score_items(none, torch.tensor([1, 2]), at, seen).shape == (0, 2)
    assert model.score_items(none, torch.zeros(0, 1, dtype=torch.long), at, seen).shape == (0, 1)


@pytest.mark.parametrize("num_items", [NUM_ITEMS, 3])  # 3: items recur within and across windows
def test_last_seen_carried_across_windows_equals_brute_force(num_items):
    from interestevo.models.repeat import LastSeen

    items, _, lengths = sequences(batch=3, steps=9)
    items = (items - 1) % num_items + 1
    times = torch.arange(27).reshape(3, 9) * 100 + 5
    history, parts = LastSeen(3, num_items), []
    for start in range(0, 9, 4):
        active = int((lengths > start).sum())
        parts.append(history.read(items[:active, start:start + 4], times[:active, start:start + 4],
                                  (lengths[:active] - start).clamp(max=4)).dense())
    for row in range(3):
        for j in range(int(lengths[row])):
            expected = torch.full((num_items + 1,), -1)
            for i in range(j):
                expected[items[row, i]] = times[row, i]
            torch.testing.assert_close(parts[j // 4][row, j % 4], expected)


def test_seen_items_select_rows_like_the_dense_table():
    from interestevo.models.repeat import SeenItems

    dense = torch.randint(-1, 50, (4, 5, NUM_ITEMS + 1)).clamp(min=-1)
    dense[dense < 20] = -1
    seen = SeenItems.from_dense(dense)
    mask = torch.rand(4, 5) < 0.5
    for index in [mask, 2, slice(1, 3), (1, 4)]:
        torch.testing.assert_close(seen[index].dense(), dense[index])
    torch.testing.assert_close(seen[mask][1:3].dense(), dense[mask][1:3])
    model = make("timelstm")
    with torch.no_grad():
        model.repeat.bias.copy_(torch.randn(40))
    queries, at = torch.randn(4, 5, 8), torch.full((4, 5), 60)
    torch.testing.assert_close(model.score(queries, at, seen), model.score(queries, at, dense))
    candidates = torch.randint(1, NUM_ITEMS + 1, (20, 3))
    torch.testing.assert_close(model.score_items(queries[mask], candidates[:int(mask.sum())], at[mask], seen[mask]),
                               model.score_items(queries[mask], candidates[:int(mask.sum())], at[mask], dense[mask]))


def test_repeat_term_depends_on_the_time_since_the_user_had_the_item_for_every_model():
    for name in NEURAL:
        model = make(name).requires_grad_(False)
        model.repeat.bias.copy_(-torch.arange(40.0))
        query, last_seen = torch.randn(1, 8), torch.full((1, NUM_ITEMS + 1), -1)
        last_seen[0, 3] = 1000
        base = model.score(query, torch.tensor([1000]), torch.full((1, NUM_ITEMS + 1), -1))
        soon = model.score(query, torch.tensor([1000]), last_seen) - base
        later = model.score(query, torch.tensor([1000 + 86_400]), last_seen) - base
        assert torch.allclose(soon[0, 3:], torch.zeros(NUM_ITEMS - 2), atol=1e-5), name
        assert abs(later[0, 3].item() + 16.0) < 1e-4, name  # floor(log2(86401)) = 16


def test_every_neural_model_has_the_same_scoring_terms_and_the_flags_switch_them_off_for_all():
    for name in NEURAL + [n + "+text" for n in NEURAL]:
        text = SimpleNamespace(vectors=torch.randn(NUM_ITEMS + 1, 6), has_text=torch.ones(NUM_ITEMS + 1, dtype=torch.bool))
        armed = build_model(name, NUM_ITEMS, ModelConfig(embedding_size=8, hidden_size=8), text=text)
        assert armed.needs_request_time and armed.needs_history, name
        assert isinstance(armed.activity, ItemActivity) and isinstance(armed.repeat, RepeatScores), name
        plain = build_model(name, NUM_ITEMS, ModelConfig(embedding_size=8, hidden_size=8, item_activity=False,
                                                         repeat_scores=False), text=text)
        assert plain.activity is None and plain.repeat is None and not plain.needs_history, name
    assert not build_model("pop", NUM_ITEMS, ModelConfig()).needs_history


def test_checkpoints_from_before_every_model_had_the_terms_load_as_trained():
    """Old runs saved item_activity/repeat_scores true for every model, but only timelstm and
    timelstm-no-dt had the terms, and timelstm-no-dt's repeat term ignored the elapsed time."""
    config = ModelConfig(embedding_size=8, hidden_size=12, dropout=0.0)
    sasrec = make("sasrec").state_dict()
    old_sasrec = {k: v for k, v in sasrec.items() if not k.startswith(("activity.", "repeat."))}
    loaded = model_from_state("sasrec", NUM_ITEMS, config, old_sasrec)
    assert loaded.activity is None and loaded.repeat is None
    for name, time_aware in (("timelstm", True), ("timelstm-no-dt", False)):
        old = {k: v for k, v in make(name).state_dict().items() if k != "repeat.time_aware"}
        loaded = model_from_state(name, NUM_ITEMS, config, old)
        assert loaded.repeat.uses_time is time_aware, name
        assert model_from_state(name, NUM_ITEMS, config, loaded.state_dict()).repeat.uses_time is time_aware


def test_item_activity_rows_in_chunks_equal_the_whole_feature_product():
    from interestevo.models.item_activity import _WeightedRows

    weights = torch.randn(600, 4, requires_grad=True)  # more rows than one chunk
    tables, rows = torch.rand(30, 4, 50), torch.randint(0, 30, (600,))
    expected = torch.einsum("mf,mfk->mk", weights, tables[rows])
    got = _WeightedRows.apply(weights, tables, rows, None)
    torch.testing.assert_close(got, expected)
    grad = torch.randn_like(expected)
    torch.testing.assert_close(torch.autograd.grad(got, weights, grad)[0],
                               torch.autograd.grad(expected, weights, grad)[0])


def test_item_activity_rows_added_to_logits_equal_logits_plus_the_terms():
    from interestevo.models.item_activity import _WeightedRows

    weights = torch.randn(300, 4, requires_grad=True)
    base = torch.randn(300, 50, requires_grad=True)
    tables, rows = torch.rand(30, 4, 50), torch.randint(0, 30, (300,))
    expected = base + torch.einsum("mf,mfk->mk", weights, tables[rows])
    got = _WeightedRows.apply(weights, tables, rows, base)
    torch.testing.assert_close(got, expected)
    grad = torch.randn_like(expected)
    for ours, theirs in zip(torch.autograd.grad(got, (weights, base), grad),
                            torch.autograd.grad(expected, (weights, base), grad)):
        torch.testing.assert_close(ours, theirs)


def test_repeat_terms_added_to_logits_equal_logits_plus_the_dense_terms():
    from interestevo.models.repeat import RepeatScores

    repeat = RepeatScores()
    with torch.no_grad():
        repeat.bias.copy_(torch.randn(repeat.bias.shape))
    last_seen = torch.full((6, 9), -1, dtype=torch.int64)
    last_seen[0, 3], last_seen[2, 1], last_seen[2, 8], last_seen[5, 3] = 5, 100, 7, 1_000_000
    at = torch.full((6,), 2_000_000)
    base = torch.randn(6, 9, requires_grad=True)
    for items in (None, torch.tensor([3, 1, 8])):
        plain = base if items is None else base[:, :3]
        expected = plain + repeat(at, last_seen, items)
        got = repeat(at, last_seen, items, base=plain)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        grad = torch.randn_like(expected)
        for ours, theirs in zip(torch.autograd.grad(got, (base, repeat.bias), grad),
                                torch.autograd.grad(expected, (base, repeat.bias), grad)):
            torch.testing.assert_close(ours, theirs)


def test_scores_stay_float32_under_bfloat16_autocast():
    """Rankings over the catalogue need float32 resolution: the product may run in bfloat16, the
    logits (bias, padding at -inf) are float32, as without autocast up to the product's rounding."""
    model = build_model("lstm", NUM_ITEMS, ModelConfig(embedding_size=8, hidden_size=8, item_activity=False,
                                                       repeat_scores=False)).eval()
    queries = torch.randn(3, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model.score(queries)
    assert logits.dtype == torch.float32 and torch.isneginf(logits[:, 0]).all()
    torch.testing.assert_close(logits[:, 1:], model.score(queries)[:, 1:], rtol=0.05, atol=0.05)


@pytest.mark.parametrize("shared", [True, False])
def test_seen_items_at_candidate_columns_equal_the_dense_gather(shared):
    from interestevo.models.repeat import SeenItems

    g = torch.Generator().manual_seed(3)
    dense = torch.randint(-1, 50, (6, NUM_ITEMS + 1), generator=g)
    dense[dense < 30] = -1
    seen = SeenItems.from_dense(dense)
    shape = (9,) if shared else (6, 9)
    items = torch.randint(1, NUM_ITEMS + 1, shape, generator=g)
    items.view(-1)[:3] = items.view(-1)[3]  # a candidate in several columns
    rows, cols, times = seen.at_columns(items)
    expected = dense.gather(1, items.expand(6, -1) if shared else items)
    got = torch.full_like(expected, -1)
    got[rows, cols] = times
    torch.testing.assert_close(got, expected)
    empty = SeenItems.from_dense(torch.full((6, NUM_ITEMS + 1), -1))
    assert all(len(t) == 0 for t in empty.at_columns(items))


def test_item_activity_of_candidates_equals_the_catalogue_columns():
    activity = ItemActivity(NUM_ITEMS, 8)
    g = torch.Generator().manual_seed(0)
    activity.observe(torch.randint(1, NUM_ITEMS + 1, (500,), generator=g),
                     torch.randint(0, 40 * 86_400, (500,), generator=g))
    at = torch.randint(0, 45 * 86_400, (7,), generator=g)
    whole = activity.features(at)
    shared = torch.randint(1, NUM_ITEMS + 1, (5,), generator=g)
    per_row = torch.randint(1, NUM_ITEMS + 1, (7, 3), generator=g)
    torch.testing.assert_close(activity.features(at, shared), whole[:, :, shared])
    torch.testing.assert_close(activity.features(at, per_row),
                               whole.gather(2, per_row.unsqueeze(1).expand(-1, whole.shape[1], -1)))
