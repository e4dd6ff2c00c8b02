"""Regenerates bench/results/SUMMARY.md from the benchmark result files and puts the same text into
README.md between the markers ``<!-- bench:start -->`` and ``<!-- bench:end -->``.

    python bench/update_readme.py            # SUMMARY.md, and README.md when it has the markers
    python bench/update_readme.py --check    # exit 1 if README.md's section is not up to date

Only the canonical runs are used (op_cpu_intel.json, op_cpu_amd.json, op_cpu_amd_zen5.json, op_cpu_amd_avx2.json, op_cuda.json, pipeline_cpu.json,
whichever exist), never --quick or ad-hoc ones, so the README shows what `python bench/op_benchmark.py --device cpu`,
`bash bench/gpu_check.sh` and `python bench/pipeline_benchmark.py` produced.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from report import summary_markdown

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CANONICAL = ["op_cpu_intel.json", "op_cpu_amd.json", "op_cpu_amd_zen5.json", "op_cpu_amd_avx2.json", "op_cuda.json", "pipeline_cpu.json"]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=HERE.parent / "README.md")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    paths = [RESULTS / name for name in CANONICAL if (RESULTS / name).is_file()]
    if not paths:
        print(f"update_readme: no results in {RESULTS} ({', '.join(CANONICAL)}); run the benchmarks first",
              file=sys.stderr)
        return 1
    if not args.check:
        (RESULTS / "SUMMARY.md").write_text("# Benchmark summary\n\n" + summary_markdown(paths, link_prefix=""))
        print(f"update_readme: wrote {RESULTS / 'SUMMARY.md'} from {', '.join(p.name for p in paths)}")
    readme = args.readme.read_text() if args.readme.is_file() else ""
    if START not in readme or END not in readme or readme.index(START) > readme.index(END):
        print(f"update_readme: {args.readme} has no {START} ... {END} section; README.md left unchanged",
              file=sys.stderr)
        return 1 if args.check else 0
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{summary_markdown(paths)}{END}{tail}"
    if args.check:
        stale = updated != readme
        print(f"update_readme: {args.readme} is {'out of date' if stale else 'up to date'}")
        return 1 if stale else 0
    args.readme.write_text(updated)
    print(f"update_readme: updated the benchmark section of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
