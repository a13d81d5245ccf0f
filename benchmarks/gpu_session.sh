#!/usr/bin/env bash
# Everything the project measures on a lent GPU, in one call (device time is scarce):
#   1. training speed: fit's CUDA-graph path against a plain eager bf16 loop (bench_training.py)
#   2. the paper reproduction: Figure 1 suite, then Table 1 rows while the budget lasts
#   3. the GPU-only tests (marker gpu)
#   4. min-norm kernel interpolation on CIFAR-10 at growing n
# Results land in one archive, $OUT/gpu_results.tar.gz (plus report.md), even when a step fails
# or times out.
#
# usage: benchmarks/gpu_session.sh PHASES [DATA] [REPRO_BUDGET_SECONDS]
#   PHASES: "speed" (steps 1 and 3), "repro" (steps 2 and 4) or "all"; two calls on a warm
#   machine let the speed figures be checked before the reproduction spends its minutes
#   DATA defaults to gpu-data/cifar10-jpg.tar.gz (a copy of ../shared/data, git-ignored, carried)
#   GPU_SESSION_SMOKE=1 checks the script itself on a CPU in a minute (tiny sizes, digits).
set -u
cd "$(dirname "$0")/.."
PHASES=${1:-all}
DATA=${2:-gpu-data/cifar10-jpg.tar.gz}
BUDGET=${3:-280}
OUT=${OUT:-/tmp/gpu_session_out}
WORK=${GPU_SESSION_WORK:-/tmp/gpu_session}/$PHASES
PY=${PYTHON:-python3}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
export PYTHONUNBUFFERED=1 RETHINK_CACHE=${RETHINK_CACHE:-/tmp/rethink_cache}

finish() {
    cp "$WORK/repro/report.md" "$OUT/report.md" 2>/dev/null
    tar -czf "$OUT/gpu_results.tar.gz" -C "$WORK" .
}
trap finish EXIT

stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

if [[ ${GPU_SESSION_SMOKE:-0} == 1 ]]; then
    bench=(--smoke --out "$WORK/training.json")
    repro_env=(RETHINK_REPRO_SMOKE=1)
    kernel=(--device cpu --n 500 --out "$WORK/kernel.json")
    tests=(tests/test_training_gpu.py)
else
    stamp install
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . > "$WORK/install.log" 2>&1 \
        || { echo "install failed"; tail -20 "$WORK/install.log"; }
    nvidia-smi > "$WORK/nvidia-smi.txt" 2>&1
    bench=(--device cuda --data "$DATA" --out "$WORK/training-cuda.json")
    repro_env=()
    kernel=(--device cuda --data "$DATA" --n 10000,20000,50000 --skip-digits --out "$WORK/kernel-cuda.json")
    tests=(tests/test_training_gpu.py tests/test_models.py tests/test_corruptions.py
           tests/test_theory.py tests/test_checks.py tests/test_capacity.py)
fi

speed() { [[ $PHASES == all || $PHASES == speed ]]; }
repro() { [[ $PHASES == all || $PHASES == repro ]]; }

speed && stamp "1/4 training speed" &&
timeout 150 "$PY" benchmarks/bench_training.py "${bench[@]}" 2>&1 | tee "$WORK/bench_training.log" | tail -15

if repro; then
stamp "2/4 reproduction (budget ${BUDGET}s)"
env "${repro_env[@]}" timeout $((BUDGET + 45)) bash benchmarks/gpu_reproduce.sh "$DATA" "$WORK/repro" "$BUDGET" \
    > "$WORK/repro.log" 2>&1
echo "reproduce exit $?"; grep -E "^\| |fitted|steps" "$WORK/repro/report.md" 2>/dev/null | head -45
fi

speed && stamp "3/4 gpu tests" &&
timeout 100 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs "${tests[@]}" 2>&1 \
    | tee "$WORK/gpu_tests.log" | tail -12

repro && stamp "4/4 kernel interpolation" &&
timeout 50 "$PY" benchmarks/bench_kernel.py "${kernel[@]}" 2>&1 | tee "$WORK/kernel.log" | tail -8
stamp done
