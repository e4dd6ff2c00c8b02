#!/usr/bin/env bash
# One command for a lent GPU (H200: Python 3.12, torch 2.11 + CUDA 13.0, 16 cores, no network, perhaps
# no ninja, pytest, hypothesis or matplotlib): install those from bench/wheelhouse without the network,
# build interestevo from source for sm_90, run tests/ops/test_cuda.py as a stage of its own, then the
# other operator tests, then the benchmark's GPU grid (float32 TF32 off, bfloat16, float32 TF32 on; no
# reference+compile), and print a short table last. Every stage has its own time limit and the whole
# stays under GPU_CHECK_BUDGET seconds (default 440; the final report adds at most 30).
#
#   bash bench/gpu_check.sh --fetch-wheelhouse   # here, with network: cp312 wheels -> bench/wheelhouse
#   bash bench/gpu_check.sh                      # there; files go to $OUT when set, else bench/results/
#
# bench/wheelhouse is ignored by git; the device tool's `carry` brings it along. The exit status is 1
# when the CUDA kernels did not build or the CUDA tests failed.
#
# Files written (5): gpu_check.log (everything), op_cuda.json, op_cuda.md, op_cuda_time.png,
# op_cuda_speedup.png.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
WHEELHOUSE=bench/wheelhouse
TOOLS="ninja pytest hypothesis matplotlib"

if [ "${1:-}" = "--fetch-wheelhouse" ]; then
    mkdir -p "$WHEELHOUSE"
    exec "$PY" -m pip download --python-version 3.12 --only-binary=:all: -d "$WHEELHOUSE" $TOOLS
fi
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

present() {  # which of the tools the later stages use are importable or on PATH
    "$PY" - <<'PY'
import importlib.util, shutil
for name in ("ninja", "pytest", "hypothesis", "matplotlib"):
    found = importlib.util.find_spec(name) is not None or shutil.which(name) is not None
    print(f"  {name:<11} {'present' if found else 'MISSING'}")
PY
}

FAILED=()

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
    echo "tools before the wheelhouse:"; present
    if [ -d "$WHEELHOUSE" ]; then
        echo "wheelhouse: $(ls "$WHEELHOUSE" | wc -l) wheels in $WHEELHOUSE"
        local tool
        for tool in $TOOLS; do  # one by one: a wheel that does not fit stops only its own tool
            stage "wheel-$tool" 60 "$PY" -m pip install --no-index --find-links "$WHEELHOUSE" \
                --disable-pip-version-check --quiet "$tool"
        done
        echo "tools after the wheelhouse:"; present
    else
        echo "!!!!! no $WHEELHOUSE (fetch it with: bash bench/gpu_check.sh --fetch-wheelhouse, and carry it)"
    fi

    # Build for sm_90 only (setup.py honours TORCH_CUDA_ARCH_LIST and MAX_JOBS); no network needed.
    stage build "$(min 240 "$(left 200)")" env TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 \
        "$PY" -m pip install --no-index --no-build-isolation --no-deps --disable-pip-version-check -v -e . ||
    stage build2 "$(min 240 "$(left 200)")" env TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 \
        "$PY" setup.py build_ext --inplace  # in case it was pip's editable install that failed

    if ! stage ext 30 "$PY" -c '
import interestevo
info = interestevo.extension_info()
print(info)
if not (info["interestevo_extension_loaded"] and info["cuda_kernels"]):
    raise SystemExit(1)'; then
        echo
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!!!!! THE CUDA KERNELS DID NOT BUILD: the CUDA tests cannot pass and the benchmark"
        echo "!!!!! reports TimeLSTM as not run. See the build stage above."
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        FAILED+=("no CUDA kernels")
    fi

    # The CUDA tests first and alone: a missing dependency of another test file cannot stop them.
    stage cuda-tests "$(min 120 "$(left 230)")" "$PY" -m pytest -q -p no:cacheprovider -rs \
        tests/ops/test_cuda.py || FAILED+=("tests/ops/test_cuda.py")

    stage tests "$(min 120 "$(left 170)")" "$PY" -m pytest -q -p no:cacheprovider tests/ops \
        --ignore=tests/ops/test_cuda.py

    # Configs run in the order float32 TF32 off, bfloat16, float32 TF32 on: a deadline cuts TF32-on.
    local bench_limit
    bench_limit=$(min 300 "$(left 40)")
    stage bench "$bench_limit" "$PY" bench/op_benchmark.py --device cuda --dtype float32,bfloat16 \
        --tf32 off,on --compile-shapes '' --compile-timeout 90 --deadline $((bench_limit - 45)) \
        --out "$OUTDIR" --tag op_cuda --no-report

    echo
    echo "===== stages (budget ${BUDGET} s, ${SECONDS} s elapsed) ====="
    printf '%s\n' "${STATUS[@]}"
    if [ ${#FAILED[@]} -gt 0 ]; then
        echo "!!!!! FAILED: ${FAILED[*]}"
        return 1
    fi
}

main 2>&1 | tee "$OUTDIR/gpu_check.log"
RC=${PIPESTATUS[0]}
# Last: the report (op_cuda.md and the PNGs beside the JSON) and its short table.
if [ "$OUTDIR/op_cuda.json" -nt "$STARTED" ]; then
    echo
    timeout 30 "$PY" bench/report.py "$OUTDIR/op_cuda.json" 2>&1 | tee -a "$OUTDIR/gpu_check.log"
else
    echo "gpu_check: this run wrote no benchmark results ($OUTDIR/op_cuda.json); see the log above" |
        tee -a "$OUTDIR/gpu_check.log"
fi
rm -f "$STARTED"
exit "$RC"
