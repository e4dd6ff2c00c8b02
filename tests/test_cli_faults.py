"""Faults a careful user and an unlucky operator meet on the command line (issue 12): each one
ends in one line on stderr and exit code 2, and nothing is lost or silently changed."""
import errno
import json

import pytest

from interestevo.cli import main

def tiny(epochs=1):
    return ["--synthetic-users", "30", "--epochs", str(epochs), "--batch-size", "16", "--embedding-size", "8",
            "--hidden-size", "8", "--no-progress"]


TINY = tiny()


def run_cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse errors
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def one_line(err, message):
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def write(path, text):
    path.write_text(text)
    return str(path)


def small_log(tmp_path, extra_lines=(), users=10, events=6):
    rows = [f"{u},{(u + j) % 7},{1_600_000_000 + 3600 * j + u}" for u in range(users) for j in range(events)]
    return write(tmp_path / "log.csv", "user_id,item_id,timestamp\n" + "\n".join([*rows, *extra_lines]) + "\n")


@pytest.fixture
def no_data_loading(monkeypatch):
    """Fails the test if a run gets as far as loading its data."""
    def refuse(*args, **kwargs):
        raise AssertionError("the data was loaded before the settings were checked")
    monkeypatch.setattr("interestevo.experiment.pipeline.load_dataset", refuse)


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-5"], "--seed: must be an integer in [0, 9223372036854775807], got -5"),
    (["--seed", "12345678901234567890123"], "--seed: must be an integer in [0,"),
    (["--lr", "-1"], "--lr: must be a finite number > 0, got -1"),
    (["--lr", "inf"], "--lr: must be a finite number > 0, got inf"),
    (["--lr", "nan"], "--lr: must be a finite number > 0, got nan"),
    (["--k-core", "-1"], "--k-core: must be an integer >= 0, got -1"),
    (["--patience", "0"], "--patience: must be a positive integer, got 0"),
    (["--max-dropped-fraction", "1.5"], "--max-dropped-fraction: must be a number in [0, 1], got 1.5"),
    (["--models", "timelstm,timelstm"], "--models names timelstm more than once"),
])
def test_flags_are_checked_and_named_before_any_data_loads(argv, message, tmp_path, capsys, no_data_loading):
    code, _, err = run_cli(["train", "--data", small_log(tmp_path), *argv, "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    one_line(err, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("toml, message", [
    ("[train]\nseed = -5\n", "--seed must be an integer in [0, 9223372036854775807], got -5 (train.seed"),
    ("[train]\nlr = -1.0\n", "--lr must be a finite number > 0, got -1.0"),
    ("[train]\nepochs = \"many\"\n", "train.epochs must be an integer, got 'many'"),
    ("[train]\nepoch = 3\n", "unknown key(s) epoch"),
    ("[modle]\n", "unknown key(s) modle"),
    ("train = 3\n", "train must be a table of settings"),
    ("[train\n", "not valid TOML"),
])
def test_bad_config_files_are_one_line_before_any_data_loads(toml, message, tmp_path, capsys, no_data_loading):
    config = write(tmp_path / "run.toml", toml)
    code, _, err = run_cli(["train", "--config", config, "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    one_line(err, message)


def test_a_config_file_sets_the_run_and_flags_override_it(tmp_path, capsys):
    small_log(tmp_path)
    config = write(tmp_path / "run.toml", '\n'.join([
        'models = ["gru", "pop"]', '[data]', 'path = "log.csv"', 'split = "temporal"',
        '[model]', 'embedding_size = 8', 'hidden_size = 8',
        '[train]', 'epochs = 3', 'patience = 1', 'lr = 0.002', 'progress = false']) + '\n')
    out = tmp_path / "run"
    assert main(["train", "--config", config, "--epochs", "2", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["data"]["path"] == str(tmp_path / "log.csv")  # relative to the file's folder
    assert saved["data"]["split"] == "temporal" and saved["models"] == ["gru", "pop"]
    assert saved["train"]["epochs"] == 2 and saved["train"]["patience"] == 1 and saved["train"]["lr"] == 0.002
    assert saved["model"]["hidden_size"] == 8


def test_patience_flag_stops_early_and_says_why(tmp_path, capsys, caplog):
    import logging

    out = tmp_path / "run"
    caplog.set_level(logging.INFO, logger="interestevo.train")
    assert main(["train", *tiny(30), "--patience", "1", "--patience-steps", "1", "--lr", "0.5", "--models", "gru",
                 "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())["gru"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["patience"] == 1 and len(history) < 30
    stop = [r.getMessage() for r in caplog.records if "early stop" in r.getMessage()]
    best = max(history, key=lambda r: r["valid"]["ndcg@10"])["epoch"]
    assert len(stop) == 1 and stop[0].startswith("gru: early stop: no better validation NDCG@10 for 1 epochs (")
    assert stop[0].endswith(f"steps); best epoch {best}")


def test_help_shows_the_defaults_of_the_dataclasses(capsys):
    from interestevo.models import ModelConfig
    from interestevo.train import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, value in (("--epochs N", TrainConfig.epochs), ("--lr LR", TrainConfig.lr),
                        ("--hidden-size N", ModelConfig.hidden_size), ("--user-col COL", "user_id")):
        assert f"{flag} (default: {value})" in text or f"{flag} (default: {value}; " in text
    assert f"NDCG@10 (default: {TrainConfig.patience}" in text


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(tmp_path, capsys):
    from interestevo.run import Run
    from interestevo.run.layout import RunError

    out = tmp_path / "run"
    first = Run(out).claim()
    try:
        with pytest.raises(RunError, match="in use by another interestevo run"):
            Run(out).claim()
        code, _, err = run_cli(["train", *TINY, "--models", "pop", "--out", str(out)], capsys)
        assert code == 2
        one_line(err, "is in use by another interestevo run")
    finally:
        first.release()
    assert main(["train", *TINY, "--models", "pop", "--out", str(out)]) == 0
    capsys.readouterr()
    code, _, err = run_cli(["train", *TINY, "--models", "pop", "--out", str(out)], capsys)
    assert code == 2
    one_line(err, "is not empty")


def test_out_that_is_a_file_is_refused_before_the_data_loads(tmp_path, capsys, no_data_loading):
    path = write(tmp_path / "taken", "x")
    for out in (path, f"{path}/sub"):
        code, _, err = run_cli(["train", *TINY, "--out", out], capsys)
        assert code == 2
        one_line(err, f"--out {out}")


def test_a_directory_left_by_a_killed_start_can_be_reused_and_resume_cleans_temporaries(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").touch()
    (out / ".config.json.abc.tmp").write_text("{half")  # killed while config.json was written
    assert main(["train", *TINY, "--models", "pop", "--out", str(out)]) == 0
    assert not list(out.rglob("*.tmp"))
    (out / "checkpoints" / "pop" / ".best.pt.xyz.tmp").write_bytes(b"half")  # killed during a save
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert not list(out.rglob("*.tmp"))


def test_cleaning_report_is_printed_saved_and_enforced(tmp_path, capsys, caplog):
    import logging

    caplog.set_level(logging.INFO)
    bad = [f"99,1,not-a-time-{i}" for i in range(5)]  # 5 of 65 rows
    log = small_log(tmp_path, bad)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", log, "--models", "pop", "--no-progress", "--out", str(out)], capsys)
    assert code == 2
    one_line(err, "cleaning dropped 7.69% of the rows, more than --max-dropped-fraction 0.01: unparsable "
                  "timestamp: 5 rows (lines 62, 63, 64, 65, 66) (pass --max-dropped-fraction 0.08 to accept it")
    report = json.loads((out / "data_report.json").read_text())
    assert report["dropped"] == {"unparsable timestamp": {"rows": 5, "examples": [62, 63, 64, 65, 66]}}
    assert any("Dropped: unparsable timestamp: 5 rows" in r.getMessage() for r in caplog.records)
    # The refused run's directory is reused as soon as the limit allows the data.
    assert main(["train", "--data", log, "--models", "pop", "--no-progress", "--max-dropped-fraction", "0.1",
                 "--out", str(out)]) == 0
    assert json.loads((out / "data_report.json").read_text())["rows_read"] == 65


def test_a_diverging_run_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    from interestevo.checkpoint import load_checkpoint
    from interestevo.train import loop

    out = tmp_path / "run"
    real_epoch = loop._train_epoch
    calls = []

    def diverge_in_epoch_2(*args, **kwargs):
        calls.append(1)
        loss = real_epoch(*args, **kwargs)
        return float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(loop, "_train_epoch", diverge_in_epoch_2)
    code, _, err = run_cli(["train", *tiny(3), "--models", "gru", "--out", str(out)], capsys)
    assert code == 2
    one_line(err, "gru: training diverged in epoch 2 (the loss or a weight is nan); the checkpoints of epoch 1")
    assert load_checkpoint(out / "checkpoints" / "gru" / "last.pt")["epoch"] == 1


def test_a_huge_learning_rate_is_caught_as_divergence(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", *TINY, "--lr", "1e30", "--models", "gru", "--out", str(out)], capsys)
    assert code == 2
    one_line(err, "gru: training diverged in epoch 1")
    assert not (out / "checkpoints" / "gru" / "best.pt").exists()


def test_control_characters_of_a_damaged_file_are_escaped_in_the_error(tmp_path, capsys):
    path = tmp_path / "log.csv"
    path.write_bytes(b"\x00" * 5000)
    code, _, err = run_cli(["train", "--data", str(path), "--models", "pop", "--out", str(tmp_path / "run")],
                           capsys)
    assert code == 2
    one_line(err, "\\x00\\x00")
    assert "\x00" not in err and len(err) < 1100


def test_a_disk_full_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    from interestevo import checkpoint

    real = checkpoint._atomic_write

    def full(path, mode, write):
        if str(path).endswith("best.pt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, mode, write)

    monkeypatch.setattr(checkpoint, "_atomic_write", full)
    code, _, err = run_cli(["train", *TINY, "--models", "gru", "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    one_line(err, "No space left on device; every file written before it is whole")


@pytest.mark.parametrize("argv, message", [
    (["--hidden-size", "100000"], "timelstm needs about"),
    (["--embedding-size", "10000000"], "timelstm needs about"),
    (["--num-negatives", "100000000", "--models", "gru"], "gru needs about"),
])
def test_sizes_that_cannot_fit_are_refused_before_any_model_is_built(argv, message, tmp_path, capsys,
                                                                     monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was built")
    monkeypatch.setattr("interestevo.experiment.pipeline.build_model", refuse)
    code, _, err = run_cli(["train", *[a for a in TINY if a not in ("--embedding-size", "--hidden-size", "8")],
                            *argv, "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    one_line(err, message)
    assert "GiB free on cpu; choose smaller sizes" in err


def test_the_memory_estimate_lets_ordinary_sizes_through():
    from interestevo.experiment.memory import GIB, training_bytes
    from interestevo.models import ModelConfig
    from interestevo.train import TrainConfig

    need = training_bytes("timelstm", 3_706, ModelConfig(), TrainConfig())  # MovieLens-1M, defaults
    assert 0.01 * GIB < need < 2 * GIB
    huge = training_bytes("timelstm", 3_706, ModelConfig(hidden_size=100_000), TrainConfig())
    assert huge > 100 * GIB  # 4·H·(E + H) recurrent weights alone are 160 GB


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished run on a log with an item file (titles and genres), shared by the read-only tests."""
    root = tmp_path_factory.mktemp("small")
    rows = [f"u{u},{(u * 5 + j) % 9},{1_600_000_000 + 3600 * j + u}" for u in range(12) for j in range(8)]
    log = write(root / "log.csv", "user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    items = write(root / "items.csv", "item_id,title,genres\n" + "\n".join(
        f"{i},Film number {i},{'Drama|Comedy' if i % 2 else 'Action'}" for i in range(9)) + "\n")
    out = root / "run"
    assert main(["train", "--data", log, "--items", items, "--models", "gru,pop", "--epochs", "1",
                 "--embedding-size", "8", "--hidden-size", "8", "--no-progress", "--out", str(out)]) == 0
    return out


def copy_run(small_run, tmp_path):
    import shutil

    return shutil.copytree(small_run, tmp_path / "copy")


def test_recommend_prints_a_table_with_titles_and_echoes_the_time(small_run, capsys):
    code, out, err = run_cli(["recommend", str(small_run), "--user", "u3", "--model", "gru", "-k", "3",
                              "--at", "1700000000000"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("user u3 (gru) at --at 1700000000000 (unix milliseconds: 2023-11-14T22:13:20Z)")
    hours = float(lines[0].split(", ")[1].split()[0])
    assert 27_000 < hours < 28_000  # read as seconds it would be 471777380 hours
    assert lines[1].split() == ["rank", "item", "score", "title", "categories"] and len(lines) == 5
    for row in lines[2:]:  # each item with its own title and genres
        rank, item, score, *label = row.split()
        assert " ".join(label) == f"Film number {item} {'Drama|Comedy' if int(item) % 2 else 'Action'}"


@pytest.mark.parametrize("argv, message", [
    (["--at", "inf"], "--at 'inf' is no time that can be stored"),
    (["--at", "1e30"], "--at '1e30' is no time that can be stored"),
    (["--at", "nan"], "--at 'nan' is no time"),
    (["--at", "1000"], "at=1970-01-01T00:16:40Z is before the last event of user 'u3'"),
    (["-k", "-1"], "-k: must be a positive integer, got -1"),
    (["-k", "0"], "-k: must be a positive integer, got 0"),
    (["--model", "transformer"], "model 'transformer' is not a model of the run"),
    (["--all-users"], "argument --all-users: not allowed with argument --user"),
    (["--out", "x.csv"], "--out goes with --all-users"),
])
def test_bad_recommend_requests_are_one_line(argv, message, small_run, capsys):
    code, _, err = run_cli(["recommend", str(small_run), "--user", "u3", *argv], capsys)
    assert code == 2
    one_line(err, message)
    if message.startswith("--model"):
        assert "it has gru, pop" in err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_recommendations_for_every_user_are_written_to_a_file(suffix, small_run, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / f"recs{suffix}"
    code, printed, err = run_cli(["recommend", str(small_run), "--all-users", "--model", "gru", "-k", "4",
                                  "--at", "2030-01-01", "--out", str(out)], capsys)
    assert code == 0, err
    recs = pd.read_csv(out, dtype=str) if suffix == ".csv" else pd.read_parquet(out)
    assert len(recs) == 12 * 4 and set(recs["user_id"]) == {f"u{u}" for u in range(12)}
    assert recs.groupby("user_id")["rank"].apply(lambda r: sorted(map(int, r))).map(tuple).nunique() == 1
    assert "for 12 users" in printed and str(out) in printed
    assert not list(tmp_path.glob(".*.tmp"))
    code, _, err = run_cli(["recommend", str(small_run), "--all-users", "--out", str(out)], capsys)
    assert code == 2
    one_line(err, "exists; choose a new file")


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "unsafe pickle", "flipped bytes"])
@pytest.mark.parametrize("command", ["recommend", "evaluate", "resume"])
def test_damaged_checkpoints_are_one_line_naming_the_file(damage, command, small_run, tmp_path, capsys):
    import torch

    run = copy_run(small_run, tmp_path)
    target = run / ("checkpoints/gru/best.pt" if command in ("recommend", "evaluate") else "checkpoints/gru/last.pt")
    good = target.read_bytes()
    if damage == "unsafe pickle":
        torch.save({"x": UnsafeThing()}, target)
    else:
        flipped = good[:len(good) // 2] + bytes(b ^ 0xFF for b in good[len(good) // 2:len(good) // 2 + 64]) + \
            good[len(good) // 2 + 64:]
        target.write_bytes({"truncated": good[:len(good) // 3], "empty": b"", "garbage": b"\x00\x01nonsense" * 50,
                            "flipped bytes": flipped}[damage])
    argv = {"recommend": ["recommend", str(run), "--user", "u3", "--model", "gru"],
            "evaluate": ["evaluate", str(run)],
            "resume": ["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]}[command]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    one_line(err, str(target))
    assert "weights_only" not in err


class UnsafeThing:
    pass


def test_checkpoints_load_with_their_own_settings_whatever_config_json_says(small_run, tmp_path, capsys):
    run = copy_run(small_run, tmp_path)
    code, before, _ = run_cli(["evaluate", str(run)], capsys)
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "hidden_size": 16}}))
    code, after, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 0, err
    assert after == before  # the same table: each checkpoint carries the settings it was trained with


@pytest.mark.parametrize("edit, message", [
    (lambda c: [1, 2, 3], "expected a table of settings"),
    (lambda c: {**c, "train": {**c["train"], "epochs": "two"}}, "train.epochs must be an integer"),
])
def test_inconsistent_run_directories_are_one_line(edit, message, small_run, tmp_path, capsys):
    run = copy_run(small_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(edit(config)))
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 2
    one_line(err, message)


def test_config_json_that_is_not_json_is_one_line(small_run, tmp_path, capsys):
    run = copy_run(small_run, tmp_path)
    (run / "config.json").write_text("{half a file")
    code, _, err = run_cli(["recommend", str(run), "--user", "u3"], capsys)
    assert code == 2
    one_line(err, "config.json is not valid JSON")


def test_a_damaged_user_store_is_one_line(small_run, tmp_path, capsys):
    run = copy_run(small_run, tmp_path)
    (run / "serving.db").write_bytes(b"\x00\x01nonsense" * 500)
    code, _, err = run_cli(["recommend", str(run), "--user", "u3", "--model", "gru"], capsys)
    assert code == 2
    one_line(err, "serving.db: not a usable SQLite database")


def test_evaluate_refuses_a_run_with_a_missing_checkpoint(small_run, tmp_path, capsys):
    run = copy_run(small_run, tmp_path)
    (run / "checkpoints" / "gru" / "best.pt").unlink()
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 2
    one_line(err, "no best checkpoint for 1 model(s) of the run")


def test_an_item_file_matching_nothing_is_refused(tmp_path, capsys):
    log = small_log(tmp_path)
    items = write(tmp_path / "items.csv", "item_id,genre\n" + "\n".join(f"sku-{i},a" for i in range(5)) + "\n")
    code, _, err = run_cli(["train", "--data", log, "--items", items, "--models", "pop", "--no-progress",
                            "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    one_line(err, "none of the item file's 5 item ids occurs in the log")


def test_cold_start_table_names_empty_buckets_instead_of_showing_them(small_run, capsys):
    assert main(["evaluate", str(small_run)]) == 0
    table = capsys.readouterr().out
    assert "[0]" not in table and "(no test target falls in: users with 1-4 prior events" in table
    header = table.splitlines()[0].split()
    assert header == ["model", "hit@10", "ndcg@10", "mrr@10", "forecast_mse"]  # the names metrics.json uses


def test_redirected_output_gets_log_lines_per_epoch_not_progress_bars(tmp_path):
    import subprocess
    import sys

    argv = [a for a in tiny(2) if a != "--no-progress"]  # progress left on: the redirect must decide
    proc = subprocess.run([sys.executable, "-m", "interestevo", "train", *argv, "--models", "gru",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr and "it/s" not in proc.stderr  # no bar frames
    assert "gru epoch 1: loss" in proc.stderr and "gru epoch 2: loss" in proc.stderr
    assert "gru: trained all 2 epochs; best epoch" in proc.stderr


def test_an_out_that_cannot_be_written_is_refused_before_the_data_loads(tmp_path, capsys, monkeypatch,
                                                                       no_data_loading):
    class ReadOnlyLock:  # what acquiring the lock meets in a read-only directory
        def __init__(self, *args, **kwargs):
            pass

        def acquire(self):
            raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("interestevo.run.layout.FileLock", ReadOnlyLock)
    code, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    one_line(err, f"--out {tmp_path / 'run'} is not writable: Permission denied")


def test_a_synthetic_dataset_that_cannot_fit_is_refused_before_it_is_generated(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the synthetic data was generated")
    monkeypatch.setattr("interestevo.run.dataset.generate_synthetic", refuse)
    code, _, err = run_cli(["train", "--synthetic-users", "100000000000", "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    one_line(err, "--synthetic-users 100,000,000,000 needs about")


def test_a_run_refused_before_writing_anything_leaves_no_directory(tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "a")], capsys)
    assert code == 2
    one_line(err, f"--data {tmp_path / 'nope.csv'}: file not found")
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\n1,2,soon\n1,3,later\n")
    code, _, err = run_cli(["train", "--data", log, "--out", str(tmp_path / "b")], capsys)
    assert code == 2
    one_line(err, "neither numbers nor datetimes")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_service_answers_with_the_item_files_titles_and_categories(small_run, tmp_path):
    pytest.importorskip("fastapi")
    from interestevo.run import Run
    from interestevo.serving import InterestTracker, ServedModel

    tracker = InterestTracker(ServedModel.from_run(Run.open(small_run), "gru"))
    tracker.update(["new", "new"], ["3", "4"], [1_700_000_000, 1_700_000_100])
    warm, cold = tracker.recommend(["new", "nobody"], at=1_700_000_200, k=4)
    assert not warm["cold_start"] and cold["cold_start"]
    for answer in (warm, cold):
        assert len(answer["items"]) == 4
        for entry in answer["items"]:
            assert entry["title"] == f"Film number {entry['item']}"
            assert sorted(entry["categories"]) == (["Comedy", "Drama"] if int(entry["item"]) % 2 else ["Action"])
