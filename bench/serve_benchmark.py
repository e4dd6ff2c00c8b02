"""Speed of `interestevo serve` on a synthetic run: service and load generator on one machine.

    python bench/serve_benchmark.py                       # trains a 100k-user, 10k-item run (1 epoch)
    python bench/serve_benchmark.py --run runs/big        # or serves a run you have

Phases, against a fresh SQLite store (WAL, fsync per request):
1. events in batches of 500 (4 concurrent clients) until every user has events: durable events/s;
2. single-event POSTs, one client: latency percentiles;
3. GET recommendations for random users from 32 concurrent clients, each sending its next request
   once answered: capacity in requests/s (httpx, then again from wrk when it is on PATH, e.g.
   Debian's wrk package: a C load generator that leaves the server the CPU a Python client takes);
4. the same GETs offered at a fixed rate (--rate, 500/s) from 32 connections, latency counted from
   each request's scheduled time: the latency a client sees at that load.
Writes bench/results/serve_cpu.json and serve_cpu.md (serve_cpu_workers<N>.* with --workers N; --tag
names them). The issue's targets (2 CPU cores): recommendations >= 500 req/s from 32 clients with
p99 <= 25 ms; >= 20,000 events/s in batches of 500; a single-event POST p99 <= 20 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
T0 = 1_700_000_000


def train_run(out: Path, users: int, items: int) -> Path:
    from interestevo.data import SyntheticConfig
    from interestevo.run import DataConfig, ExperimentConfig
    from interestevo.experiment import run_experiment
    from interestevo.train import TrainConfig

    config = ExperimentConfig(
        data=DataConfig(synthetic=SyntheticConfig(num_users=users, num_items=items, min_events=5, max_events=10)),
        train=TrainConfig(epochs=1, device="cpu", progress=False, batch_size=256), models=("timelstm",),
        out=str(out))
    run_experiment(config)
    return out


def start_server(run: Path, store: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    log = open(store.with_name("server.log"), "w")
    server = subprocess.Popen([sys.executable, "-m", "interestevo", "serve", str(run), "--port", str(port),
                               "--store", f"sqlite:///{store}", "--workers", str(workers)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not start")


failures: list[str] = []  # transport errors of the current phase


def cpu_seconds(process: subprocess.Popen) -> float:
    """User + system CPU time the server and its live worker processes have used (Linux /proc)."""
    total = 0.0
    for pid in [process.pid, *_children(process.pid)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited in between
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def percentiles(latencies: list[float]) -> dict:
    ms = np.asarray(latencies) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "requests": len(ms), "transport_errors": len(failures),
            "first_error": failures[0] if failures else None}


def server_share(server: subprocess.Popen, cpu_before: float, wall: float, requests: int) -> dict:
    """How much of a core the server got during a phase, and its CPU time per request: on a shared
    machine this tells a slow service from a starved one."""
    used = cpu_seconds(server) - cpu_before
    return {"server_cores_used": used / wall, "server_cpu_ms_per_request": 1000 * used / requests}


async def run_clients(concurrency: int, jobs, make_request) -> tuple[list[float], float]:
    """``concurrency`` clients take jobs from one queue; returns each request's latency and the wall time."""
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []
    failures.clear()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def worker():
            while not queue.empty():
                job = queue.get_nowait()
                start = time.perf_counter()
                try:
                    answer = await make_request(client, job)
                except httpx.TransportError as error:  # counted, and reported with the results
                    failures.append(repr(error))
                    continue
                latencies.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    raise SystemExit(f"request failed: {answer.status_code} {answer.text[:300]}")

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return latencies, time.perf_counter() - start


WRK_SCRIPT = """
math.randomseed(0)
request = function()
  return wrk.format("GET", "/v1/users/u" .. math.random(0, %(last_user)d) .. "/recommendations?k=10&at=%(at)d")
end
done = function(summary, latency, requests)
  io.write(string.format("WRK-RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_recommendations(url: str, users: int, at: int, seconds: int, work: Path) -> dict:
    """The same GET phase from wrk (C, one thread, 32 connections): a load generator that leaves the
    server the cores the Python client takes (httpx spends several ms of CPU per request)."""
    script = work / "recommendations.lua"
    script.write_text(WRK_SCRIPT % {"last_user": users - 1, "at": at})
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(script), url], capture_output=True,
                         text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK-RESULT"))
    requests, duration_us, errors, p50, p95, p99 = (int(v) for v in line.split()[1:])
    return {"p50_ms": p50 / 1000, "p95_ms": p95 / 1000, "p99_ms": p99 / 1000, "requests": requests,
            "transport_errors": errors, "requests_per_s": requests / (duration_us / 1e6), "clients": 32,
            "load_generator": "wrk"}


async def fixed_rate_clients(host: str, port: int, paths: list[str], rate: float, clients: int) -> dict:
    """Open-loop load, as wrk2 makes it: ``clients`` keep-alive connections together send ``rate``
    requests/s on a fixed schedule (client c sends requests c, c + clients, ... each 1/rate apart),
    whether or not earlier answers have come. A request's latency counts from the moment it was
    scheduled, so a request held back by a slow answer on its connection is charged for the wait
    (no coordinated omission)."""
    latencies: list[float] = []
    lateness: list[float] = []  # how far behind its schedule each request was sent

    async def client(c: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for j, path in enumerate(paths[c::clients]):
                scheduled = start + (c + j * clients) / rate
                if (wait := scheduled - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                lateness.append(time.perf_counter() - scheduled)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                fields = {name.strip().lower(): value for name, value in
                          (line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)}
                body = await reader.readexactly(int(fields[b"content-length"]))
                latencies.append(time.perf_counter() - scheduled)
                if status != 200:
                    raise SystemExit(f"request failed: {status} {body[:300]!r}")
        finally:
            writer.close()

    failures.clear()
    start = time.perf_counter() + 0.2  # every connection is open by then
    await asyncio.gather(*[client(c) for c in range(clients)])
    wall = time.perf_counter() - start
    return {**percentiles(latencies), "requests_per_s": len(latencies) / wall, "offered_per_s": rate,
            "clients": clients, "max_send_lateness_ms": 1000 * max(lateness), "load_generator": "open loop"}


def run_event_loop(coroutine):
    """On uvloop where it is there (uvicorn[standard] brings it): the generator's own CPU per request
    is lower, so less of its lateness is charged to the service."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run to serve (default: train a synthetic one)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=Path("bench-serve-work"), help="run and store go here")
    parser.add_argument("--port", type=int, default=8971)
    parser.add_argument("--recommendations", type=int, default=20_000, help="GET requests in phase 3")
    parser.add_argument("--single-events", type=int, default=2_000)
    parser.add_argument("--wrk-seconds", type=int, default=20, help="length of the wrk GET phase (when wrk is on PATH)")
    parser.add_argument("--rate", type=float, default=500, help="requests/s offered in the fixed-rate GET phase")
    parser.add_argument("--rate-seconds", type=int, default=20, help="length of the fixed-rate GET phase")
    parser.add_argument("--tag", help="results file stem (default: serve_cpu, or serve_cpu_workers<N>)")
    parser.add_argument("--workers", type=int, default=1, help="service processes (serve --workers); results go to "
                                                               "serve_cpu.* for 1, serve_cpu_workers<N>.* otherwise")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    from interestevo.run import Run

    reused = args.run is not None or Run(args.work / "run").metrics.is_file()
    run = args.run or (args.work / "run" if reused else train_run(args.work / "run", args.users, args.items))
    train_s = None if reused else time.perf_counter() - started
    items = Run.open(run).load_model("timelstm")[1]["item_ids"][1:]
    store = args.work / "bench-store.db"
    for path in store.parent.glob(store.name + "*"):
        path.unlink()
    server = start_server(run, store, args.port, args.workers)
    url = f"http://127.0.0.1:{args.port}"
    rng = np.random.default_rng(0)
    results = {}
    try:
        # 1. every user gets 5 events, posted in batches of 500 (several users per batch)
        users = [f"u{n}" for n in range(args.users)]
        per_user = 5
        # event i is user i % users's (i // users)-th: a batch of 500 holds 500 users, times increase
        order = np.arange(args.users * per_user) % args.users
        picks = rng.integers(len(items), size=len(order))
        batches = [[{"user": users[order[i]], "item": items[picks[i]], "time": T0 + i, "id": f"load-{i}"}
                    for i in range(start, min(start + 500, len(order)))] for start in range(0, len(order), 500)]
        cpu = cpu_seconds(server)
        latencies, wall = asyncio.run(run_clients(4, batches, lambda c, b: c.post(f"{url}/v1/events",
                                                                                    json={"events": b})))
        results["events_batches_of_500"] = {**percentiles(latencies), "events": len(order),
                                            "events_per_s": len(order) / wall, "clients": 4,
                                            **server_share(server, cpu, wall, len(batches))}
        print("events:", results["events_batches_of_500"], flush=True)

        # 2. single-event POSTs, one client, later times than everything above
        singles = [[{"user": users[int(u)], "item": items[int(i)], "time": T0 + 10_000_000 + n}]
                   for n, (u, i) in enumerate(zip(rng.integers(args.users, size=args.single_events),
                                                 rng.integers(len(items), size=args.single_events)))]
        cpu = cpu_seconds(server)
        latencies, wall = asyncio.run(run_clients(1, singles, lambda c, b: c.post(f"{url}/v1/events",
                                                                                    json={"events": b})))
        results["single_event_post"] = {**percentiles(latencies), "requests_per_s": len(singles) / wall,
                                        "clients": 1, **server_share(server, cpu, wall, len(singles))}
        print("single events:", results["single_event_post"], flush=True)

        # 3. recommendations for random users at 32 concurrent clients
        asks = rng.integers(args.users, size=args.recommendations)
        at = T0 + 20_000_000
        cpu = cpu_seconds(server)
        latencies, wall = asyncio.run(run_clients(
            32, asks, lambda c, u: c.get(f"{url}/v1/users/{users[int(u)]}/recommendations",
                                         params={"k": 10, "at": at})))
        results["recommendations"] = {**percentiles(latencies), "requests_per_s": len(asks) / wall, "clients": 32,
                                      **server_share(server, cpu, wall, len(asks))}
        print("recommendations:", results["recommendations"], flush=True)
        if shutil.which("wrk"):
            cpu = cpu_seconds(server)
            results["recommendations_wrk"] = wrk_recommendations(url, args.users, at, args.wrk_seconds, args.work)
            results["recommendations_wrk"].update(server_share(
                server, cpu, args.wrk_seconds, results["recommendations_wrk"]["requests"]))
            print("recommendations (wrk):", results["recommendations_wrk"], flush=True)
        # 4. the same GETs at a fixed rate, as a latency objective is read: p99 at 500 requests/s
        paths = [f"/v1/users/{users[int(u)]}/recommendations?k=10&at={at}"
                 for u in rng.integers(args.users, size=int(args.rate * args.rate_seconds))]
        cpu = cpu_seconds(server)
        results["recommendations_fixed_rate"] = run_event_loop(
            fixed_rate_clients("127.0.0.1", args.port, paths, args.rate, 32))
        results["recommendations_fixed_rate"].update(server_share(server, cpu, args.rate_seconds, len(paths)))
        print("recommendations (fixed rate):", results["recommendations_fixed_rate"], flush=True)
        metrics = httpx.get(f"{url}/metrics").text
        batch = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
                 if line.startswith("interestevo_recommendation_batch_size_")
                 and line.split(" ")[0].endswith(("_sum", "_count"))}
        results["recommendations"]["mean_batch"] = (batch["interestevo_recommendation_batch_size_sum"]
                                                    / batch["interestevo_recommendation_batch_size_count"])
    finally:
        server.terminate()
        server.wait(timeout=60)

    fixed = results["recommendations_fixed_rate"]
    targets = {"recommendations: 32 clients keep up with >= 500 req/s offered":
                   fixed["offered_per_s"] >= 500 and fixed["requests_per_s"] >= 0.99 * fixed["offered_per_s"],
               "recommendations p99 <= 25 ms at that rate": fixed["p99_ms"] <= 25,
               "events >= 20,000/s in batches of 500": results["events_batches_of_500"]["events_per_s"] >= 20_000,
               "single-event POST p99 <= 20 ms": results["single_event_post"]["p99_ms"] <= 20}
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    report = {"machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()},
              "run": {"path": str(run), "users": args.users, "items": len(items),
                      "trained_here_s": train_s},
              "load_average_after": os.getloadavg(),  # the machine may be shared: how busy it was
              "store": "sqlite (WAL, synchronous=FULL)", "workers": args.workers, "results": results,
              "targets_met": targets}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.tag or ("serve_cpu" if args.workers == 1 else f"serve_cpu_workers{args.workers}")
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = [("POST /v1/events, batches of 500 (4 clients)", results["events_batches_of_500"],
             f"{results['events_batches_of_500']['events_per_s']:,.0f} events/s"),
            ("POST /v1/events, one event (1 client)", results["single_event_post"],
             f"{results['single_event_post']['requests_per_s']:,.0f} req/s"),
            ("GET recommendations (32 clients, httpx)", results["recommendations"],
             f"{results['recommendations']['requests_per_s']:,.0f} req/s")]
    if "recommendations_wrk" in results:
        rows.append(("GET recommendations (32 connections, wrk)", results["recommendations_wrk"],
                     f"{results['recommendations_wrk']['requests_per_s']:,.0f} req/s"))
    rows.append((f"GET recommendations, {fixed['offered_per_s']:,.0f} req/s offered (32 connections, fixed rate)",
                 fixed, f"{fixed['requests_per_s']:,.0f} req/s"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"CPU: {cpu} ({os.cpu_count()} cores), {args.users:,} users, {len(items):,} items, SQLite store, "
             f"{args.workers} service process{'es' if args.workers > 1 else ''}; "
             f"load average after the run: {load}",
             "", "| route | throughput | p50 ms | p95 ms | p99 ms | server cores used | server CPU ms/request |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | {speed} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['server_cores_used']:.2f} | {r['server_cpu_ms_per_request']:.2f} |" for name, r, speed in rows]
    lines += ["", f"Recommendation micro-batches averaged {results['recommendations']['mean_batch']:.1f} requests."]
    lines += ["", "The load generator runs on the same 2 cores: the httpx client spends several ms of CPU per "
              "request, wrk (when installed) far less. Both keep 32 requests in flight, so they measure capacity "
              "and their latency is 32 / throughput (Little's law). The fixed-rate phase offers a set rate from "
              "32 connections whatever the answers do and counts each latency from the request's scheduled "
              "time (as wrk2 does): the recommendation targets are read from it."]
    lines += ["", "Targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items())]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
