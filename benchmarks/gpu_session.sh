#!/usr/bin/env bash
# Everything the project measures on a lent GPU, in one call (device time is scarce). Steps:
#   tests     the GPU-only tests (marker gpu)
#   panel     the calibration panel's GPU-only row: small Inception, 3 seeds, CIFAR-10 subset
#             and digits (benchmarks/panel.py; the CPU rows are measured on the CPU)
#   speed     training speed: fit's CUDA-graph path against a plain eager bf16 loop
#   examples  the plugin end to end on CUDA: pytest --rethink examples (4 xdist workers)
#   repro     the paper reproduction: Figure 1 suite, then Table 1 rows while the budget lasts
#             (resumed from the committed H200 runs)
#   kernel    min-norm kernel interpolation on CIFAR-10 at growing n
# Results land in one archive, $OUT/gpu_results.tar.gz (plus report.md), even when a step fails
# or times out; every step has its own timeout so a slow one cannot eat the others' time.
#
# usage: benchmarks/gpu_session.sh STEPS [DATA] [REPRO_BUDGET_SECONDS]
#   STEPS: comma-separated steps above; "speed" alone also runs tests (as before), "repro" alone
#   also runs kernel, "all" = tests,panel,speed,repro,kernel
#   DATA defaults to gpu-data/cifar10-jpg.tar.gz (a copy of ../shared/data, git-ignored, carried)
#   GPU_SESSION_SMOKE=1 checks the script itself on a CPU in a few minutes (tiny sizes, digits).
set -u
cd "$(dirname "$0")/.."
STEPS=${1:-all}
DATA=${2:-gpu-data/cifar10-jpg.tar.gz}
BUDGET=${3:-280}
case $STEPS in
    all) STEPS=tests,panel,speed,repro,kernel ;;
    speed) STEPS=speed,tests ;;
    repro) STEPS=repro,kernel ;;
esac
OUT=${OUT:-/tmp/gpu_session_out}
WORK=${GPU_SESSION_WORK:-/tmp/gpu_session}/${STEPS//,/-}
PY=${PYTHON:-python3}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
export PYTHONUNBUFFERED=1 RETHINK_CACHE=${RETHINK_CACHE:-/tmp/rethink_cache}

finish() {
    cp "$WORK/repro/report.md" "$OUT/report.md" 2>/dev/null
    tar -czf "$OUT/gpu_results.tar.gz" -C "$WORK" .
}
trap finish EXIT

stamp() { echo "== $(date -u +%H:%M:%S) $*"; }
step() { [[ ,$STEPS, == *,$1,* ]]; }

if [[ ${GPU_SESSION_SMOKE:-0} == 1 ]]; then
    bench=(--smoke --out "$WORK/training.json")
    repro_env=(RETHINK_REPRO_SMOKE=1)
    kernel=(--device cpu --n 500 --out "$WORK/kernel.json")
    tests=(tests/test_training_gpu.py)
    panel=(--quick --device cpu --data digits --models mlp_1x512)
    examples=(examples/test_paper_models.py -k "mlp1x512 and (true_labels or slowdown)"
              --rethink-device=cpu -n 0)
else
    stamp install
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . > "$WORK/install.log" 2>&1 \
        || { echo "install failed"; tail -20 "$WORK/install.log"; }
    nvidia-smi > "$WORK/nvidia-smi.txt" 2>&1
    bench=(--device cuda --data "$DATA" --out "$WORK/training-cuda.json")
    repro_env=()
    kernel=(--device cuda --data "$DATA" --n 10000,20000,50000 --skip-digits --out "$WORK/kernel-cuda.json")
    tests=(tests/test_training_gpu.py tests/test_models.py tests/test_corruptions.py
           tests/test_theory.py tests/test_checks.py tests/test_capacity.py tests/test_report.py)
    panel=(--device cuda --data cifar,digits --cifar "$DATA" --models small_inception)
    examples=(examples --rethink-device=cuda -n 4)
fi

step tests && stamp "gpu tests" &&
timeout "${TESTS_SECONDS:-150}" "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs "${tests[@]}" 2>&1 \
    | tee "$WORK/gpu_tests.log" | tail -12

step panel && stamp "panel (GPU rows)" &&
timeout "${PANEL_SECONDS:-240}" "$PY" benchmarks/panel.py "${panel[@]}" --out "$WORK/panel-gpu.json" \
    --markdown "$WORK/panel-gpu.md" 2>&1 | tee "$WORK/panel.log" | tail -20

step speed && stamp "training speed" &&
timeout "${SPEED_SECONDS:-150}" "$PY" benchmarks/bench_training.py "${bench[@]}" 2>&1 \
    | tee "$WORK/bench_training.log" | tail -15

step examples && stamp "plugin end to end" &&
timeout "${EXAMPLES_SECONDS:-120}" "$PY" -m pytest --rethink -p no:cacheprovider "${examples[@]}" \
    --rethink-json="$WORK/examples.json" --junitxml="$WORK/examples-junit.xml" 2>&1 \
    | tee "$WORK/examples.log" | tail -25

if step repro; then
stamp "reproduction (budget ${BUDGET}s)"
env "${repro_env[@]}" timeout $((BUDGET + 45)) bash benchmarks/gpu_reproduce.sh "$DATA" "$WORK/repro" "$BUDGET" \
    > "$WORK/repro.log" 2>&1
echo "reproduce exit $?"; grep -E "^\| |fitted|steps" "$WORK/repro/report.md" 2>/dev/null | head -45
fi

step kernel && stamp "kernel interpolation" &&
timeout "${KERNEL_SECONDS:-50}" "$PY" benchmarks/bench_kernel.py "${kernel[@]}" 2>&1 | tee "$WORK/kernel.log" | tail -8
stamp done
