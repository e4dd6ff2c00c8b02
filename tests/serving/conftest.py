"""Real processes for the service tests: small trained runs, `interestevo serve` under uvicorn on a
loopback port, and a redis-server (skipped where the binary is missing, except in CI)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _needed(module: str):
    """The serve extra's modules; in CI (which installs the extra) a missing one fails, elsewhere it skips."""
    if os.environ.get("CI"):
        return __import__(module)
    return pytest.importorskip(module, reason=f'the service tests need pip install "interestevo[serve,test]" '
                                              f'({module} is missing)')


for _module in ("fastapi", "uvicorn", "prometheus_client", "redis"):
    _needed(_module)
httpx = _needed("httpx")

from interestevo.data import SyntheticConfig
from interestevo.run import DataConfig, ExperimentConfig
from interestevo.experiment import run_experiment
from interestevo.models import ModelConfig
from interestevo.train import TrainConfig

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC = SyntheticConfig(num_users=40, num_items=120, num_categories=6, min_events=8, max_events=14)


def train_small_run(out: Path, seed: int = 0, synthetic: SyntheticConfig = SYNTHETIC) -> Path:
    """A one-epoch timelstm run on a small synthetic log: enough weights to serve, little CPU."""
    config = ExperimentConfig(data=DataConfig(synthetic=synthetic),
                              model=ModelConfig(embedding_size=8, hidden_size=8, dropout=0.0),
                              train=TrainConfig(epochs=1, device="cpu", progress=False, seed=seed, batch_size=16),
                              models=("timelstm",), out=str(out))
    run_experiment(config)
    return out


@pytest.fixture
def empty_tracker():
    """empty_tracker(run, model="timelstm"): the one engine with that model of ``run`` over a new,
    empty MemoryStore, to compute what a service or command should answer for the same events."""
    from interestevo.run import Run
    from interestevo.serving import InterestTracker, MemoryStore, ServedModel

    def tracker(run, model: str = "timelstm"):
        return InterestTracker(ServedModel.from_run(Run.open(run), model), MemoryStore())

    return tracker


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    return train_small_run(tmp_path_factory.mktemp("runs") / "run")


@pytest.fixture(scope="session")
def other_run(tmp_path_factory) -> Path:
    """The same data and architecture, other weights (another seed): what a reload brings."""
    return train_small_run(tmp_path_factory.mktemp("runs") / "other", seed=1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python -m interestevo serve`` in a child process, with an httpx client on it."""

    def __init__(self, run: Path, *extra: str, store: str | None = None, log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "interestevo", "serve", str(run), "--port", str(self.port), *extra]
        if store:
            args += ["--store", store]
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.log = log or run.parent / f"serve-{self.port}.log"
        self._log_file = open(self.log, "w")
        self.process = subprocess.Popen(args, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=60)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout} s: {self.log.read_text()}")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.client.close()
        self._log_file.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()
        self._log_file.close()


@pytest.fixture
def serve():
    """serve(run, *flags, store=None) starts a server; all are stopped after the test."""
    servers = []

    def start(run, *extra, store=None):
        servers.append(Server(run, *extra, store=store))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class RedisServer:
    def __init__(self, directory: Path):
        self.port, self.directory = free_port(), directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        """(Again) on the same port and directory: its append-only file brings the data back."""
        # An fsync per write: the service's answers come after the events are durable.
        self.process = subprocess.Popen(
            [REDIS_BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


REDIS_BINARY = shutil.which("redis-server")


@pytest.fixture
def redis_server(tmp_path):
    if REDIS_BINARY is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing, and CI must run the Redis tests (.ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server); the Redis store is untested here")
    server = RedisServer(tmp_path)
    yield server
    server.stop()
