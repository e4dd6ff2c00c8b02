"""Markdown tables, target checks and PNG plots from the benchmark JSON files.

    python bench/report.py bench/results/op_cpu_intel.json      # -> op_cpu_intel.md, op_cpu_intel_time.png, ...
    python bench/report.py bench/results/pipeline_cpu.json      # -> pipeline_cpu.md

Needs no torch and no compiled extension, so GPU results can be rendered anywhere. The short table
printed last is the one to read: the issue's targets with PASS/MISS, and the key ratios.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

BASELINE = "nn.LSTM"
OURS = "exp+decomp"  # the default TimeLSTM, the one the targets are about


@dataclass(frozen=True)
class Target:
    device: str
    shape: str
    mode: str
    competitor: str
    baseline: str
    limit: float  # time(competitor) / time(baseline) must not exceed this
    text: str


TARGETS = [  # issue 4 ("Targets to report against"), measured as ratios within one run
    Target("cpu", "target-b128", "fwdbwd", OURS, BASELINE, 1.0, "T=50 B=128 I=H=128 fwd+bwd, exp+decomp vs nn.LSTM"),
    Target("cpu", "target-b128", "fwdbwd", OURS, "reference", 1 / 1.8,
           "T=50 B=128 I=H=128 fwd+bwd, exp+decomp vs eager reference"),
    Target("cpu", "target-b128", "fwdbwd", "none", BASELINE, 0.85, "T=50 B=128 I=H=128 fwd+bwd, none vs nn.LSTM"),
    Target("cpu", "target-b8", "fwdbwd", OURS, BASELINE, 1.5, "T=50 B=8 I=H=64 fwd+bwd, exp+decomp vs nn.LSTM"),
    Target("cpu", "target-b8", "fwdbwd", OURS, "reference", 1 / 5, "T=50 B=8 I=H=64 fwd+bwd, exp+decomp vs eager reference"),
    Target("cpu", "target-b128", "fwd", OURS, BASELINE, 1.2, "T=50 B=128 I=H=128 inference, exp+decomp vs nn.LSTM"),
    Target("cuda", "fastrnns", "fwdbwd", "none", BASELINE, 1.2, "fastrnns fwd+bwd, none vs cuDNN"),
    Target("cuda", "fastrnns", "fwdbwd", OURS, BASELINE, 1.5, "fastrnns fwd+bwd, exp+decomp vs cuDNN"),
    Target("cuda", "fastrnns", "fwdbwd", OURS, "reference", 1 / 20, "fastrnns fwd+bwd, exp+decomp vs eager reference"),
]
MODE_TITLES = {"fwdbwd": "forward + backward (training)", "fwd": "forward only, no grad (inference)"}


# ------------------------------------------------------------------------------------ op results
def timings(data: dict) -> dict:
    """(config, shape, mode, competitor) -> median ms, for the records that ran."""
    return {(r["config"], r["shape"], r["mode"], r["competitor"]): r["median_ms"]
            for r in data["results"] if "median_ms" in r}


def competitors(data: dict, include_gemm: bool = False) -> list[str]:
    seen = dict.fromkeys(r["competitor"] for r in data["results"])
    return [c for c in seen if include_gemm or not c.startswith("gemm")]


def shapes(data: dict, group: str | None = None) -> list[dict]:
    out = {}
    for r in data["results"]:
        if group is None or r["group"] == group:
            out.setdefault(r["shape"], {k: r[k] for k in ("shape", "T", "B", "I", "H", "group")})
    return list(out.values())


def ratio(times: dict, config: str, shape: str, mode: str, a: str, b: str) -> float | None:
    ta, tb = times.get((config, shape, mode, a)), times.get((config, shape, mode, b))
    return ta / tb if ta and tb else None


def spread(data: dict, config: str, t: "Target") -> tuple[float, float] | None:
    """The ratio's range from the two competitors' interquartile ranges: a near-limit verdict
    whose range straddles the limit can flip from run to run."""
    found = {r["competitor"]: r for r in data["results"] if "median_ms" in r and r["config"] == config
             and r["shape"] == t.shape and r["mode"] == t.mode and r["competitor"] in (t.competitor, t.baseline)}
    if len(found) < 2:
        return None
    a, b = found[t.competitor], found[t.baseline]
    return a["p25_ms"] / b["p75_ms"], a["p75_ms"] / b["p25_ms"]


def check_targets(data: dict) -> list[dict]:
    """One row per target and float32 config, plus "bf16 works" on CUDA."""
    times, rows = timings(data), []
    for config in data["configs"]:
        if config["dtype"] != "float32":
            continue
        for t in (t for t in TARGETS if t.device == data["device"]):
            measured = ratio(times, config["label"], t.shape, t.mode, t.competitor, t.baseline)
            speedup = t.baseline == "reference"
            low_high = spread(data, config["label"], t)
            rows.append({
                "config": config["label"], "target": t.text,
                "limit": f"≥ {1 / t.limit:.3g}× faster" if speedup else f"≤ {t.limit:.3g}×",
                "measured": None if measured is None else
                (faster(1 / measured) if speedup else f"{measured:.2f}×"),
                "range": None if low_high is None else
                (f"{1 / low_high[1]:.2f}–{1 / low_high[0]:.2f}× faster" if speedup
                 else f"{low_high[0]:.2f}–{low_high[1]:.2f}×"),
                "status": "not run" if measured is None else ("PASS" if measured <= t.limit else "MISS"),
            })
    if data["device"] == "cuda":
        for config in (c for c in data["configs"] if c["dtype"] == "bfloat16"):
            ok = times.get((config["label"], "fastrnns", "fwdbwd", OURS))
            error = next((r["error"] for r in data["results"] if r["config"] == config["label"]
                          and r["shape"] == "fastrnns" and r["competitor"] == OURS and "error" in r), None)
            rows.append({"config": config["label"], "target": "fastrnns fwd+bwd in bfloat16 runs",
                         "limit": "runs", "measured": f"{ok:.2f} ms" if ok else (error or "not run"),
                         "status": "PASS" if ok else ("MISS" if error else "not run")})
    return rows


def faster(speedup: float | None) -> str | None:
    if speedup is None:
        return None
    return f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower"


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(data: dict) -> str:
    env = data["env"]
    where = (f"{env.get('gpu')} (sm_{env.get('gpu_capability', '').replace('.', '')}), CUDA {env.get('torch_cuda')}, "
             f"cuDNN {env.get('cudnn')}" if data["device"] == "cuda" else
             f"{env['cpu']} ({env['logical_cpus']} logical CPUs, {env['cpu_capability']})")
    loads = [env["load_average_start"][0], *(env.get("load_average_end") or [])[:1],
             *(r["load_average"] for r in data["results"] if "load_average" in r)]
    return (f"{where}; torch {env['torch']}, {env['torch_threads']} threads; {env['date_utc']}; "
            f"1-min load average {min(loads):.1f}–{max(loads):.1f} during the run (own threads included); "
            f"git {env.get('git')}")


def ratio_rows(data: dict, config: str, mode: str, group: str) -> tuple[list[str], list[list]]:
    times, names = timings(data), competitors(data)
    header = ["shape", "T", "B", "I=H", *[f"{n} ms" for n in names],
              f"{OURS} ÷ LSTM", "none ÷ LSTM", f"{OURS} vs reference"]
    rows = []
    for s in shapes(data, group):
        cells = [times.get((config, s["shape"], mode, n)) for n in names]
        if not any(cells):
            continue
        vs_ref = ratio(times, config, s["shape"], mode, "reference", OURS)
        rows.append([s["shape"], s["T"], s["B"], s["H"], *cells,
                     ratio(times, config, s["shape"], mode, OURS, BASELINE),
                     ratio(times, config, s["shape"], mode, "none", BASELINE),
                     faster(vs_ref)])
    return header, rows


def markdown_op(data: dict, stem: str) -> str:
    env, out = data["env"], []
    out.append(f"# TimeLSTM operator benchmark — {data['device'].upper()}\n")
    out.append(f"Measured on {machine_line(data)}.  \nCommand: `{env['command']}` "
               f"({env.get('seconds', '?')} s). interestevo extension: "
               f"{'loaded' if env['interestevo']['interestevo_extension_loaded'] else 'NOT loaded (reference fallback)'}, "
               f"CPU vectors {env['interestevo'].get('cpu_vectors')}, CUDA kernels {env['interestevo'].get('cuda_kernels')}.\n")
    out.append("Times are medians of interleaved samples after warm-up; ratios below 1 mean TimeLSTM is "
               "faster. `reference` is the package's plain-PyTorch loop (eager); `reference+compile` compiles "
               "its cell with torch.compile (the loop over time stays in Python). `gemm`/`gemm+decomp` are the "
               "bare GEMMs of the layer (the floor): GFLOP/s count matrix work only (backward = 2× forward).\n")
    out.append("## Targets\n")
    out.append(table(["config", "target", "limit", "measured", "IQR range", "status"],
                     [[r["config"], r["target"], r["limit"], r["measured"], r.get("range"), r["status"]]
                      for r in check_targets(data)]))
    out.append("")
    out.append("## Configurations\n")
    out.append(table(["config", "TF32 flags", "nn.LSTM runs", "square GEMM GFLOP/s (n=2048 CPU, 8192 GPU)"],
                     [[c["label"], ", ".join(f"{k}={v}" for k, v in c["tf32_flags"].items()), c["nn_lstm_kernel"],
                       c["peak_gemm_gflops"]] for c in data["configs"]]))
    for config in data["configs"]:
        for mode in MODE_TITLES:
            header, rows = ratio_rows(data, config["label"], mode, "named")
            if rows:
                out.append(f"\n## {config['label']} — {MODE_TITLES[mode]}\n")
                out.append(table(header, rows))
        out.append(f"\n### {config['label']} — matrix throughput, GFLOP/s (% of the GEMM floor's time)\n")
        out.append(efficiency_table(data, config["label"]))
        out.append(f"\n### {config['label']} — peak memory per call, MiB\n")
        out.append(memory_table(data, config["label"]))
        for mode in MODE_TITLES:
            header, rows = ratio_rows(data, config["label"], mode, "sweep")
            if rows:
                out.append(f"\n### {config['label']} — sweep, {MODE_TITLES[mode]}\n")
                out.append(table(header, rows))
    out.append(f"\n![time vs hidden size]({stem}_time.png)\n\n![speed-up over nn.LSTM]({stem}_speedup.png)\n")
    problems = [r for r in data["results"] if "error" in r]
    if problems or data.get("skipped"):
        out.append("## Not measured\n")
        out += [f"- {r['config']}, {r['shape']}, {r['mode']}, {r['competitor']}: {r['error']}" for r in problems]
        out += [f"- {s['config']}, {s['shape']}: skipped ({s['reason']})" for s in data.get("skipped", [])]
    return "\n".join(out) + "\n"


def efficiency_table(data: dict, config: str) -> str:
    names = competitors(data, include_gemm=True)
    by_key = {(r["shape"], r["mode"], r["competitor"]): r for r in data["results"]
              if r["config"] == config and "median_ms" in r}
    rows = []
    for s in shapes(data, "named"):
        for mode in MODE_TITLES:
            cells = []
            for n in names:
                r = by_key.get((s["shape"], mode, n))
                cells.append(None if r is None else f"{r['gflops']:.3g}" + (
                    f" ({100 * r['efficiency']:.0f}%)" if "efficiency" in r and not n.startswith("gemm") else ""))
            if any(cells):
                rows.append([s["shape"], mode, *cells])
    return table(["shape", "mode", *names], rows)


def memory_table(data: dict, config: str) -> str:
    names = competitors(data)
    mem = {(r["shape"], r["mode"], r["competitor"]): r.get("peak_mem_mb") for r in data["results"]
           if r["config"] == config and "median_ms" in r}
    rows = [[s["shape"], mode, *[mem.get((s["shape"], mode, n)) for n in names]]
            for s in shapes(data, "named") for mode in MODE_TITLES
            if any(mem.get((s["shape"], mode, n)) is not None for n in names)]
    return table(["shape", "mode", *names], rows) if rows else "(not measured)"


def plot_op(data: dict, prefix: Path) -> list[Path]:
    """Time vs hidden size (one panel per batch size) and speed-up over nn.LSTM, for the sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    records = [r for r in data["results"] if "median_ms" in r and r["I"] == r["H"]
               and not r["competitor"].startswith("gemm")]
    sweep_t = {r["T"] for r in records if r["group"] == "sweep"}
    records = [r for r in records if r["T"] in sweep_t]
    batches = sorted({r["B"] for r in records})
    panels = [(c["label"], mode) for c in data["configs"] for mode in MODE_TITLES
              if any(r["config"] == c["label"] and r["mode"] == mode for r in records)]
    if not batches or not panels:
        return []
    names = [n for n in competitors(data) if any(r["competitor"] == n for r in records)]
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}  # one colour per competitor in every panel
    hidden = sorted({r["H"] for r in records})
    paths = []
    for kind in ("time", "speedup"):
        title = textwrap.wrap(f"TimeLSTM vs nn.LSTM, T={','.join(map(str, sorted(sweep_t)))}: {machine_line(data)}",
                              32 * len(batches))
        columns = min(len(names), 2 * len(batches))
        header = 0.15 * len(title) + 0.25 * math.ceil(len(names) / columns) + 0.25  # inches for title + legend
        height = 3.0 * len(panels) + header
        fig, axes = plt.subplots(len(panels), len(batches), figsize=(3.6 * len(batches), height), squeeze=False)
        for (config, mode), row in zip(panels, axes):
            for B, ax in zip(batches, row):
                points = defaultdict(dict)
                for r in records:
                    if r["config"] == config and r["mode"] == mode and r["B"] == B:
                        points[r["competitor"]][r["H"]] = r["median_ms"]
                lstm = points.get(BASELINE, {})
                for name in names:
                    series = points.get(name, {})
                    if kind == "speedup":
                        if name == BASELINE:
                            continue
                        series = {h: lstm[h] / t for h, t in series.items() if h in lstm}
                    if series:
                        hs = sorted(series)
                        ax.plot(hs, [series[h] for h in hs], marker="o", ms=3, color=colours[name], label=name)
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_xticks(hidden, [str(h) for h in hidden])
                ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
                ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
                if kind == "speedup":
                    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
                ax.set_title(f"{config}, {mode}, B={B}", fontsize=8)
                ax.set_xlabel("hidden size H (= I)", fontsize=8)
                ax.set_ylabel("ms per call" if kind == "time" else "nn.LSTM time / time (×)", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.grid(True, which="major", lw=0.3)
        labelled = {}
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                labelled.setdefault(label, handle)
        fig.suptitle("\n".join(title), fontsize=7, y=1 - 0.05 / height)
        fig.legend(labelled.values(), labelled.keys(), loc="upper center", ncol=columns, fontsize=8,
                   bbox_to_anchor=(0.5, 1 - (0.15 * len(title) + 0.1) / height))
        fig.tight_layout(rect=(0, 0, 1, 1 - header / height))
        path = Path(f"{prefix}_{kind}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def short_op(data: dict) -> str:
    """The few lines to read last: targets and the key ratios of every named shape."""
    lines = [f"TimeLSTM benchmark ({data['device']}): {machine_line(data)}"]
    for r in check_targets(data):
        lines.append(f"  {r['status']:<7} {r['config']:<18} {r['target']:<58} {r['measured'] or '–':>13}  "
                     f"(IQR {r.get('range') or '–'}; limit {r['limit']})")
    times = timings(data)
    for config in data["configs"]:
        for mode in MODE_TITLES:
            rows = []
            for s in shapes(data, "named"):
                lstm, ours = times.get((config["label"], s["shape"], mode, BASELINE)), \
                    times.get((config["label"], s["shape"], mode, OURS))
                if lstm is None and ours is None:
                    continue
                none = ratio(times, config["label"], s["shape"], mode, "none", BASELINE)
                ref = ratio(times, config["label"], s["shape"], mode, "reference", OURS)
                rows.append(f"  {s['shape']:<16} {fmt(lstm):>9} {fmt(ours):>9} "
                            f"{fmt(ours / lstm if ours and lstm else None):>8} {fmt(none):>8} {fmt(ref):>9}")
            if rows:
                lines.append(f"{config['label']}, {mode}: {'shape':<9} {'LSTM ms':>9} {'ours ms':>9} "
                             f"{'ours/LSTM':>8} {'none/LSTM':>8} {'ref/ours':>9}")
                lines += rows
    return "\n".join(lines)


# ------------------------------------------------------------------------------ pipeline results
def markdown_pipeline(data: dict) -> str:
    env = data["env"]
    out = [f"# Pipeline benchmark — {data['device'].upper()}\n",
           f"Measured on {env['cpu']} ({env['logical_cpus']} logical CPUs), torch {env['torch']}, "
           f"{env['torch_threads']} threads; {env['date_utc']}; 1-min load average {fmt(env['load_average_start'][0])} "
           f"at start, {fmt((env.get('load_average_end') or [None])[0])} at end (own threads included); "
           f"git {env.get('git')}.  \n"
           f"Command: `{env['command']}` ({env.get('seconds', '?')} s).\n",
           table(["stage", "measure", "value", "unit", "note"],
                 [[r["stage"], r["metric"], r["value"], r["unit"], r.get("note", "")] for r in data["rows"]])]
    if data.get("skipped"):
        out.append("\n## Not measured\n")
        out += [f"- {s['stage']}: {s['reason']}" for s in data["skipped"]]
    return "\n".join(out) + "\n"


def short_pipeline(data: dict) -> str:
    lines = [f"Pipeline benchmark ({data['device']}), load average {fmt(data['env']['load_average_start'][0])}:"]
    lines += [f"  {r['stage']:<12} {r['metric']:<44} {fmt(r['value'], 4):>10} {r['unit']}" for r in data["rows"]]
    lines += [f"  SKIPPED {s['stage']}: {s['reason']}" for s in data.get("skipped", [])]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- summary
def summary_markdown(paths: list[Path], link_prefix: str = "bench/results/") -> str:
    """The README's performance section: targets, key ratios and pipeline figures, with machines.
    Links to the full tables start with ``link_prefix`` (relative to where the text will live)."""
    out = ["Every figure below comes from `bench/` (see `bench/README.md`) and names the machine it was "
           "measured on. Ratios are TimeLSTM time ÷ nn.LSTM time in the same process (below 1: faster).\n"]
    for path in paths:
        data = json.loads(Path(path).read_text())
        if data["kind"] == "op":
            out.append(f"**Operator, {data['device'].upper()}** — {machine_line(data)}. "
                       f"`{data['env']['command']}`; full tables: [`{path.stem}.md`]({link_prefix}{path.stem}.md).\n")
            out.append(table(["config", "target", "limit", "measured", "IQR range", "status"],
                             [[r["config"], r["target"], r["limit"], r["measured"], r.get("range"), r["status"]]
                              for r in check_targets(data)]))
            for config in data["configs"]:
                header, rows = ratio_rows(data, config["label"], "fwdbwd", "named")
                keep = [0, 1, 2, 3] + [i for i, h in enumerate(header) if h in (
                    f"{BASELINE} ms", f"{OURS} ms", f"{OURS} ÷ LSTM", "none ÷ LSTM", f"{OURS} vs reference")]
                if rows:
                    out.append(f"\n{config['label']}, forward + backward:\n")
                    out.append(table([header[i] for i in keep], [[row[i] for i in keep] for row in rows]))
            out.append("")
        else:
            env = data["env"]
            out.append(f"**Pipeline, {data['device'].upper()}** — {env['cpu']}, {env['torch_threads']} threads, "
                       f"{env['date_utc']}, load average {fmt(env['load_average_start'][0])}. `{env['command']}`\n")
            out.append(table(["stage", "measure", "value", "unit"],
                             [[r["stage"], r["metric"], r["value"], r["unit"]] for r in data["rows"]]))
            out.append("")
    return "\n".join(out) + "\n"


def render(path: Path) -> str:
    """Writes <stem>.md (and PNGs for op results) next to ``path``; returns the short text."""
    data = json.loads(path.read_text())
    prefix = path.with_suffix("")
    if data["kind"] == "op":
        plot_op(data, prefix)
        Path(f"{prefix}.md").write_text(markdown_op(data, prefix.name))
        return short_op(data)
    Path(f"{prefix}.md").write_text(markdown_pipeline(data))
    return short_pipeline(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", nargs="+", type=Path, help="result files written by the benchmarks")
    args = parser.parse_args(argv)
    texts = []
    for path in args.json:
        try:
            texts.append(render(path))
        except (OSError, ValueError, KeyError) as error:
            print(f"report: could not render {path}: {type(error).__name__}: {error}", file=sys.stderr)
    print("\n\n".join(texts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
