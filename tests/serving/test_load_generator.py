"""The serve benchmark's fixed-rate load generator: it keeps its schedule and charges a request for
the time it waited behind a slow answer (no coordinated omission), so its p99 can be trusted."""
from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serve_benchmark.py"


@pytest.fixture(scope="module")
def serve_benchmark():
    spec = importlib.util.spec_from_file_location("serve_benchmark", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_against_server(serve_benchmark, rate: float, seconds: float, clients: int, stall=None) -> dict:
    """The generator against a loopback HTTP server that answers at once, except that between
    ``stall = (start, end)`` seconds after it starts it holds every answer until ``end``."""
    async def main():
        started = time.perf_counter()

        async def answer(reader, writer):
            try:
                while await reader.readuntil(b"\r\n\r\n"):
                    if stall is not None and stall[0] <= time.perf_counter() - started < stall[1]:
                        await asyncio.sleep(started + stall[1] - time.perf_counter())
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            except (asyncio.IncompleteReadError, ConnectionError):  # the client closed its connection
                writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            paths = [f"/v1/users/u{n}/recommendations" for n in range(int(rate * seconds))]
            return await serve_benchmark.fixed_rate_clients("127.0.0.1", port, paths, rate, clients)

    return asyncio.run(main())


def test_it_keeps_the_offered_rate(serve_benchmark):
    result = run_against_server(serve_benchmark, rate=200, seconds=1.5, clients=8)
    assert result["requests"] == 300
    assert 180 <= result["requests_per_s"] <= 205
    assert result["p50_ms"] < 50


def test_a_stall_is_charged_to_every_request_scheduled_during_it(serve_benchmark):
    # 0.3 s without answers at 200 requests/s: ~60 requests were due in it. A generator that only
    # times sends it made would see one slow request per client (4); this one sees them all.
    result = run_against_server(serve_benchmark, rate=200, seconds=1.2, clients=4, stall=(0.5, 0.8))
    assert result["requests"] == 240
    assert result["p99_ms"] > 150
    assert result["p95_ms"] > 50  # more than 5% of the requests waited (a closed loop: under 2%)
    assert result["max_send_lateness_ms"] > 100  # requests queued behind the held answers went late
