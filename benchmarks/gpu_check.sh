#!/usr/bin/env bash
# The GPU checks of the step work, as one script: what each speed switch buys at the paper
# setting (SwinIR pair x4, batch 16 of 48^2 patches, an ImageNet-size encoder), peak memory,
# the GPU tests, and a short bf16 + compile DCKD run that resumes. Results go to $OUT
# (default gpu-check/): one JSON per switch row (benchmarks/step.py --json) and a log.
#
#   OUT=gpu-check bash benchmarks/gpu_check.sh           # on a CUDA machine (about 8 minutes)
#   SMOKE=1 bash benchmarks/gpu_check.sh                 # the same steps, tiny, on the CPU
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
PY="${PY:-.venv/bin/python}"
DCKD="${DCKD:-.venv/bin/dckd}"
LOG="$OUT/gpu_check.log"
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=(--batch 1 --patch 16 --steps 1 --methods logits,dckd --encoders imagenet-size --quick)
  ITERS=4
  LIMIT=600
else
  SIZE=(--batch 16 --patch 48 --steps 5 --methods logits,dckd --encoders imagenet-size --quick)
  ITERS=40
  LIMIT=240
fi
say() { echo "== $*" | tee -a "$LOG"; }
# A smoke run on a CPU without bfloat16 instructions takes its steps in float32 (dckd refuses
# bf16 there: it is emulated, tens of times slower).
NO_BF16=0
if [ "${SMOKE:-0}" = 1 ] && ! "$PY" -c "import sys, dckd_cli.engine.switches as s; sys.exit(not s.cpu_has_bf16())"; then
  NO_BF16=1
  say "this CPU has no bfloat16 instructions: the smoke run's bf16 switches are dropped"
fi
float32() { # the arguments, less the bf16 switches (with their --precision / --set) when NO_BF16=1
  local args=("$@") i=0
  while [ "$i" -lt "${#args[@]}" ]; do
    local a="${args[$i]}" b="${args[$((i + 1))]:-}"
    if [ "$NO_BF16" = 1 ] && { [ "$a" = --precision ] || { [ "$a" = --set ] && [[ "$b" == *frozen_bf16=true || "$b" == *mixed_precision=bf16 ]]; }; }; then
      i=$((i + 2))
      continue
    fi
    printf '%s\n' "$a"
    i=$((i + 1))
  done
}

say "machine"
{ nvidia-smi || true; "$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available())"; } >>"$LOG" 2>&1

# Each row: a name and the switches it adds (on CUDA tf32 and cudnn.benchmark default on). Under
# bf16 the encoder's passes stay float32 (TF32) unless method.encoder.autocast=true. All rows run
# in one process (one start-up, one CUDA context), each row's JSON written as it ends, the most
# telling first and torch.compile, the slowest, last; a row that fails says so and the next runs.
ROWS=(
  "defaults|"
  "recompute-chunk|--set method.encoder.recompute=true --set method.encoder.chunk=16"
  "bf16|--precision bf16"
  "plain|--set runtime.tf32=false --set runtime.cudnn_benchmark=false --set optim.fused=false"
  "bf16-encoder-autocast|--precision bf16 --set method.encoder.autocast=true"
  "bf16-channels-last|--precision bf16 --set runtime.channels_last=true"
  "bf16-frozen-bf16|--precision bf16 --set runtime.frozen_bf16=true"
  "bf16-recompute|--precision bf16 --set method.encoder.recompute=true"
  "bf16-compile|--precision bf16 --set runtime.compile=[student,teacher,encoder]"
  "bf16-compile-freezing|--precision bf16 --set runtime.compile=[student,teacher,encoder] --set runtime.compile_freezing=true"
)
ROW_ARGS=()
for row in "${ROWS[@]}"; do
  name="${row%%|*}"
  read -r -a extra <<<"${row#*|}"
  mapfile -t extra < <(float32 "${extra[@]}")
  ROW_ARGS+=(--row "$name|${extra[*]:-}")
done
say "step benchmark: ${#ROWS[@]} rows"
timeout "$((LIMIT * 2))" "$PY" benchmarks/step.py "${SIZE[@]}" "${ROW_ARGS[@]}" --json-dir "$OUT" >>"$LOG" 2>&1 \
  || say "FAILED: the step benchmark (exit $?)"
grep "^FAILED" "$LOG" || true

say "where the bf16 step's time goes, stage by stage"
STAGE_SIZE=(--batch 16 --patch 48 --steps 3 --precision bf16)
[ "${SMOKE:-0}" = 1 ] && STAGE_SIZE=(--batch 1 --patch 16 --steps 1 --precision bf16)
mapfile -t STAGE_SIZE < <(float32 "${STAGE_SIZE[@]}")
timeout "$LIMIT" "$PY" benchmarks/step_stages.py "${STAGE_SIZE[@]}" --json "$OUT/stages-bf16.json" >>"$LOG" 2>&1 \
  || say "FAILED: the stage breakdown (exit $?)"

say "GPU tests"
timeout "$LIMIT" "$PY" -m pytest -q tests/gpu >>"$LOG" 2>&1 || say "FAILED: tests/gpu (exit $?)"

say "bf16 + compile dckd run on built-in data, then resumed"
RUN="$OUT/bf16-compile-run"
rm -rf "$RUN"
SETS=(--set runtime.mixed_precision=bf16 --set "runtime.compile=[student]" --set runtime.save_every=2)
mapfile -t SETS < <(float32 "${SETS[@]}")
timeout "$LIMIT" "$DCKD" distill --preset demo --method dckd --iters "$((ITERS / 2))" --output "$RUN" "${SETS[@]}" -q \
  >>"$LOG" 2>&1 || say "FAILED: the first half (exit $?)"
timeout "$LIMIT" "$DCKD" distill --output "$RUN" --resume --iters "$ITERS" -q >>"$LOG" 2>&1 \
  || say "FAILED: the resume (exit $?)"
grep -c '"iter"' "$RUN/metrics.jsonl" >>"$LOG" 2>&1 || true

say "summary"
"$PY" - "$OUT" <<'PYEOF' | tee -a "$LOG"
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("step-*.json")):
    record = json.loads(path.read_text())
    rows = ", ".join(f"{k}: {v['sec_per_iter']:.3f} s, {v['gflop'] / v['sec_per_iter'] / 1000:.1f} TFLOP/s, "
                     f"peak {v['peak_mem_mb'] or 0:.0f} MB, kept for backward {v.get('saved_mb') or 0:.0f} MB"
                     for k, v in record["methods"].items())
    print(f"{path.stem}: {record['device']}: {rows}")
PYEOF
