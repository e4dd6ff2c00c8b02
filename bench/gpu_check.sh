#!/usr/bin/env bash
# One command for a lent GPU (H200: Python 3.12, torch 2.11 + CUDA 13.0, 16 cores, no network):
# build interestevo from source for sm_90, run the operator tests (CUDA ones included), run the
# benchmark's GPU grid (float32 with TF32 off and on for every competitor, bfloat16), and print a
# short table last. Every stage has its own time limit and the whole stays under GPU_CHECK_BUDGET
# seconds (default 440; the final report adds at most 30).
#
#   bash bench/gpu_check.sh        # files go to $OUT when set, else bench/results/
#
# Files written (5): gpu_check.log (everything), op_cuda.json, op_cuda.md, op_cuda_time.png,
# op_cuda_speedup.png.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OUTDIR=${OUT:-bench/results}
BUDGET=${GPU_CHECK_BUDGET:-440}
mkdir -p "$OUTDIR"
STARTED=$(mktemp)  # results older than this file are from an earlier run, not this one
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the in-place build is found even if pip failed

STATUS=()
stage() {  # stage NAME LIMIT_SECONDS COMMAND...: runs it under timeout, records rc and duration
    local name=$1 limit=$2 began=$SECONDS rc
    shift 2
    echo
    if [ "$limit" -lt 5 ]; then
        echo "===== $name: SKIPPED, the time budget is spent (${SECONDS} s elapsed) ====="
        STATUS+=("$(printf '%-8s skipped (no time left)' "$name")")
        return 1
    fi
    echo "===== $name (limit ${limit} s, ${SECONDS} s elapsed) ====="
    timeout -k 10 "$limit" "$@"
    rc=$?
    [ $rc -eq 124 ] && echo "!!!!! $name: stopped at its ${limit} s limit"
    STATUS+=("$(printf '%-8s rc=%-3s %4d s' "$name" "$rc" $((SECONDS - began)))")
    return $rc
}

left() {  # seconds of the budget left after keeping $1 seconds for the later stages
    echo $((BUDGET - SECONDS - $1))
}

min() { echo $(( $1 < $2 ? $1 : $2 )); }

main() {
    stage info 30 bash -c "
        nvidia-smi || echo 'nvidia-smi failed'
        echo; command -v nvcc && nvcc --version | tail -n 2
        $PY - <<'PY'
import platform, torch
print('python', platform.python_version(), '| torch', torch.__version__, '| CUDA', torch.version.cuda,
      '| cuDNN', torch.backends.cudnn.version(), '| GPU', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
      '| capability', torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None)
PY"

    # Build for sm_90 only (setup.py honours TORCH_CUDA_ARCH_LIST and MAX_JOBS); no network needed.
    stage build "$(min 240 "$(left 200)")" env TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 \
        "$PY" -m pip install --no-index --no-build-isolation --no-deps --disable-pip-version-check -v -e . ||
    stage build2 "$(min 240 "$(left 200)")" env TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 \
        "$PY" setup.py build_ext --inplace  # in case it was pip's editable install that failed

    stage ext 30 "$PY" -c '
import interestevo
info = interestevo.extension_info()
print(info)
if not (info["interestevo_extension_loaded"] and info["cuda_kernels"]):
    raise SystemExit("!!!!! no CUDA kernels: the benchmark will report TimeLSTM as not run")'

    stage tests "$(min 150 "$(left 170)")" "$PY" -m pytest -q -p no:cacheprovider tests/ops

    local bench_limit
    bench_limit=$(min 300 "$(left 40)")
    stage bench "$bench_limit" "$PY" bench/op_benchmark.py --device cuda --dtype float32,bfloat16 \
        --tf32 off,on --compile-timeout 90 --deadline $((bench_limit - 45)) \
        --out "$OUTDIR" --tag op_cuda --no-report

    echo
    echo "===== stages (budget ${BUDGET} s, ${SECONDS} s elapsed) ====="
    printf '%s\n' "${STATUS[@]}"
}

main 2>&1 | tee "$OUTDIR/gpu_check.log"
# Last: the report (op_cuda.md and the PNGs beside the JSON) and its short table.
if [ "$OUTDIR/op_cuda.json" -nt "$STARTED" ]; then
    echo
    timeout 30 "$PY" bench/report.py "$OUTDIR/op_cuda.json" 2>&1 | tee -a "$OUTDIR/gpu_check.log"
else
    echo "gpu_check: this run wrote no benchmark results ($OUTDIR/op_cuda.json); see the log above" |
        tee -a "$OUTDIR/gpu_check.log"
fi
rm -f "$STARTED"
