"""The quick start: `interestevo train` with no options, and what a newcomer meets around it."""
import logging
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest
import torch

from interestevo import __version__
from interestevo.cli import main
from interestevo.cli.main import _config_from_args, _parser
from interestevo.run import DataConfig, ExperimentConfig
from interestevo.run.config import SYNTHETIC_LOG, SYNTHETIC_TRAIN
from interestevo.run.dataset import load_dataset
from interestevo.metrics import HISTORY_BUCKETS, ITEM_FREQUENCY_BUCKETS
from interestevo.train import TrainConfig

TINY = ["--synthetic-users", "40", "--epochs", "2", "--batch-size", "16", "--embedding-size", "8",
        "--hidden-size", "8", "--no-progress", "--models", "timelstm,pop"]


def counts_by_bucket(values, buckets) -> dict[str, int]:
    return {label: int(((values >= low) & (values <= (np.inf if high is None else high))).sum())
            for label, low, high in buckets}


def test_the_default_synthetic_log_fills_every_cold_start_bucket_but_unseen():
    dataset = load_dataset(DataConfig())
    inter, targets = dataset.inter, dataset.test_targets
    prior_events = targets - np.asarray(inter.user_offsets)[inter.user[targets]]
    by_history = counts_by_bucket(prior_events, HISTORY_BUCKETS)
    by_frequency = counts_by_bucket(dataset.train_item_counts[inter.item[targets]], ITEM_FREQUENCY_BUCKETS)
    assert all(count >= 50 for count in by_history.values()), by_history
    assert by_frequency["rare"] >= 20 and by_frequency["frequent"] > 0, by_frequency
    assert by_frequency["unseen"] == 0  # leave-one-out; the run says how to see new items


def test_synthetic_data_trains_on_its_own_budget_and_logs_on_the_defaults():
    assert ExperimentConfig().train == TrainConfig(**SYNTHETIC_TRAIN)
    # The quality benchmark trains real logs on TrainConfig's defaults: they must stay as they are.
    assert ExperimentConfig(data=DataConfig(path="log.csv")).train == TrainConfig()


def config_of(argv):
    return _config_from_args(_parser().parse_args(["train", *argv]))


def test_flags_and_config_files_override_the_budget_of_the_data_given(tmp_path):
    assert config_of([]).train == TrainConfig(**SYNTHETIC_TRAIN)
    assert config_of(["--data", "log.csv"]).train == TrainConfig()
    assert config_of(["--patience", "7"]).train.patience == 7
    settings = tmp_path / "run.toml"
    settings.write_text("[train]\nepochs = 5\n")
    on_a_log = config_of(["--config", str(settings), "--data", "log.csv", "--models", "timelstm"]).train
    assert on_a_log == TrainConfig(epochs=5)
    assert config_of(["--config", str(settings)]).train == TrainConfig(**{**SYNTHETIC_TRAIN, "epochs": 5})
    settings.write_text("[data.synthetic]\nnum_users = 100\n")  # the rest: the built-in log's
    assert config_of(["--config", str(settings)]).data.synthetic == replace(SYNTHETIC_LOG, num_users=100)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "run"
    threads = torch.get_num_threads()
    try:
        assert main(["train", *TINY, "--threads", "1", "--out", str(out)]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    return out


def test_a_run_names_its_directory_when_it_starts_and_leaves_no_lock(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="interestevo")
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        assert main(["train", *TINY, "--models", "pop", "--threads", "1", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"run directory: {out} (training on cpu, torch threads: 1)"
    assert (out / "metrics.json").is_file() and not (out / ".lock").exists()


def test_recommend_defaults_to_the_time_of_the_last_logged_event(run, capsys):
    last = int(load_dataset(ExperimentConfig.load(run / "config.json").data).inter.timestamp.max())
    iso = datetime.fromtimestamp(last, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert main(["recommend", str(run), "--user", "3", "--model", "timelstm"]) == 0
    default = capsys.readouterr().out.splitlines()
    assert default[0].startswith(f"user 3 (timelstm) at the latest logged event ({iso}), ")
    assert main(["recommend", str(run), "--user", "3", "--model", "timelstm", "--at", str(last)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == default[1:]


def test_version(capsys):
    with pytest.raises(SystemExit) as leaving:
        main(["--version"])
    assert leaving.value.code == 0 and capsys.readouterr().out == f"interestevo {__version__}\n"


@pytest.mark.parametrize("command, says", [
    ("train", ['pip install --no-build-isolation -e ".[text]"', "--threads N CPU threads",
               "on the built-in synthetic data"]),
    ("serve", ['pip install --no-build-isolation -e ".[serve]"', "0 picks a free one"]),
    ("recommend", ["run's last logged event"]),
])
def test_help_says_what_works_from_a_clone(command, says, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert 'pip install "interestevo[' not in text  # not on the package index
    for words in says:
        assert words in text
