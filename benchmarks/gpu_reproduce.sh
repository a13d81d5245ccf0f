#!/usr/bin/env bash
# The GPU reproduction, run once on one H100/H200: the Figure 1 suite on small Inception first
# (5 randomizations + label corruption p = 0, 0.2, ..., 1.0, p=0/1 shared with true/random
# labels), then as many Table 1 rows as the time budget leaves. Always ends with OUT/report.md.
#
# usage: benchmarks/gpu_reproduce.sh DATA OUT [BUDGET_SECONDS]
#   DATA            cifar10-jpg.tar.gz (extracted once into OUT/data), or any --data value the
#                   command takes (cifar10:ROOT, folder:ROOT, a folder)
#   OUT             output folder: runs/*.json, report.md, report.json, PNGs, log.txt
#   BUDGET_SECONDS  total seconds for the whole command, data loading included (default 420:
#                   room to spare under an 8-minute limit); no run starts after it, the run in
#                   flight is stopped, the report is still written
# env: PYTHON        interpreter (default python3); the repository is put on PYTHONPATH
#      MAX_EPOCHS    epoch cap per run (default 100)
#      RETHINK_CACHE where decoded images are cached (default $TMPDIR/rethink_cache)
#      BUNDLE_DIR    if set, also copy the results there as at most 6 files (report.md,
#                   report.json, the 3 PNGs, runs.tar.gz with runs/, log.txt, nvidia-smi.txt),
#                   even when the command fails: for a device $OUT that returns <= 8 files
#      RETHINK_REPRO_SMOKE=1  check this script on a CPU in seconds: digits, MLP, tiny sizes
#                   (DATA is then ignored)
#      RETHINK_REPRO_DEVICE   device for the real-data path (default cuda; cpu to dry-run it)
#      RETHINK_REPRO_ARGS     extra options appended last (they win), e.g. for a CPU dry run:
#                   "--train-size 200 --test-size 100 --max-epochs 1"
#      RESUME_FROM  a folder of run files (*.json) from an earlier invocation, e.g. the
#                   committed docs/results/h200-2026-11-27/runs or an unpacked runs.tar.gz:
#                   copied into OUT/runs (never over a file already there), so a fresh
#                   machine trains only what is missing
# Rerunning with the same OUT resumes: finished runs are kept.
set -euo pipefail

usage() { echo "usage: $0 DATA OUT [BUDGET_SECONDS]" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
DATA=$1
OUT=$2
BUDGET=${3:-420}
if ! [[ $BUDGET =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "$0: BUDGET_SECONDS must be a number of seconds, got '$BUDGET'" >&2
    exit 2
fi
MAX_EPOCHS=${MAX_EPOCHS:-100}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
# Decoded images are cached here (not under OUT, so OUT stays small enough to copy back).
export RETHINK_CACHE=${RETHINK_CACHE:-${TMPDIR:-/tmp}/rethink_cache}

args=(--out "$OUT" --time-budget "$BUDGET" --max-epochs "$MAX_EPOCHS"
      --rows figure1a,figure1bc,table1 --p 0,0.2,0.4,0.6,0.8,1.0)
if [[ ${RETHINK_REPRO_SMOKE:-0} == 1 ]]; then
    args+=(--data digits --device cpu --figure-model mlp1x512 --models mlp1x512
           --table-rows plain,random_labels --train-size 300 --test-size 100
           --max-epochs 3 --quiet)
else
    if [[ $DATA != *:* && ! -e $DATA ]]; then
        echo "$0: DATA '$DATA' does not exist" >&2
        exit 2
    fi
    # Table 1 models cheapest first, so the leftover time fills the most rows.
    args+=(--data "$DATA" --device "${RETHINK_REPRO_DEVICE:-cuda}" --figure-model inception
           --models mlp1x512,mlp3x512,inception,alexnet,inception_nobn)
fi
read -r -a extra <<< "${RETHINK_REPRO_ARGS:-}"
args+=("${extra[@]}")

bundle() {
    [[ -n ${BUNDLE_DIR:-} ]] || return 0
    mkdir -p "$BUNDLE_DIR"
    for f in report.md report.json figure1a_loss.png figure1b_relative_time.png \
             figure1c_test_error.png; do
        [[ -f $OUT/$f ]] && cp "$OUT/$f" "$BUNDLE_DIR/"
    done
    tar -czf "$BUNDLE_DIR/runs.tar.gz" -C "$OUT" \
        $(cd "$OUT" && ls -d runs log.txt nvidia-smi.txt 2>/dev/null) || true
}
trap bundle EXIT

if [[ -n ${RESUME_FROM:-} && ! -d $RESUME_FROM ]]; then
    echo "$0: RESUME_FROM '$RESUME_FROM' is not a folder of run files" >&2
    exit 2
fi
mkdir -p "$OUT/runs"
{ nvidia-smi || echo "nvidia-smi: not available"; } > "$OUT/nvidia-smi.txt" 2>&1
echo "gpu_reproduce: $PY -m rethink_checks.reproduce ${args[*]}" | tee -a "$OUT/log.txt"
if [[ -n ${RESUME_FROM:-} ]]; then
    for f in "$RESUME_FROM"/*.json; do
        if [[ -e $f && ! -e $OUT/runs/${f##*/} ]]; then cp "$f" "$OUT/runs/"; fi
    done
    echo "gpu_reproduce: $(ls "$OUT/runs" | wc -l) run files in $OUT/runs after copying" \
         "$RESUME_FROM" | tee -a "$OUT/log.txt"
fi
"$PY" -m rethink_checks.reproduce "${args[@]}" 2>&1 | tee -a "$OUT/log.txt"
echo "gpu_reproduce: report in $OUT/report.md" | tee -a "$OUT/log.txt"
