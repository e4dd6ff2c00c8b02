import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_and_only_rank0_writes(tmp_path):
    # No --out: both ranks must agree on rank 0's timestamped directory, so exactly one appears.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "interestevo", "train", "--synthetic-users", "30", "--epochs", "2", "--batch-size", "4",
           "--embedding-size", "8", "--hidden-size", "8", "--models", "timelstm,gru,pop", "--device", "cpu",
           "--no-progress"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"timelstm", "gru", "pop"}
    history = json.loads((run / "history.json").read_text())
    assert len(history["timelstm"]) == 2
    assert proc.stdout.count("run directory:") == 1  # the table is printed once, by rank 0
    leftovers = [p.name for p in run.rglob("*.tmp")]
    assert not leftovers
