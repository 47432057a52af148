#!/usr/bin/env bash
# The GPU rows of docs/performance.md, in one go, on a machine with a CUDA GPU.
#
#   bash benchmarks/gpu.sh STAGE... [--out DIR]
#
# Runs tinycnn from this checkout (no install needed: PYTHONPATH=src). Every command is
# echoed before it runs, and its output goes to DIR/log.txt as well as the terminal;
# the run directories (without checkpoints) are packed into DIR/runs.tar.gz.
# A machine without internet needs the MNIST files (raw or .gz) under
# $TINYCNN_DATA/MNIST/raw; `tinycnn data fetch` verifies them first.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
stages=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    *) stages+=("$1"); shift ;;
  esac
done
mkdir -p "$out"
work=${GPU_WORK:-/tmp/tinycnn-gpu}
mkdir -p "$work"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log="$out/log.txt"

step() {  # step SECONDS ARGS...: one tinycnn command, with a time limit
  local limit=$1; shift
  echo "=== \$ tinycnn $* (limit ${limit}s) $(date -u +%H:%M:%S)" | tee -a "$log"
  local t0=$(date +%s.%N)
  timeout "$limit" python3 -m tinycnn "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "=== rc=$rc wall=$(python3 -c "print(round($(date +%s.%N)-$t0,1))")s" | tee -a "$log"
}

train_seconds() {  # the training seconds of each seed of the given run directories
  python3 - "$@" <<'PY' 2>&1 | tee -a "$log"
import json, pathlib, sys
for root in sys.argv[1:]:
    for run in sorted(pathlib.Path(root).glob("**/metrics.jsonl")):
        rows = [json.loads(l) for l in run.read_text().splitlines() if l.strip()]
        rows = [r for r in rows if "train_seconds" in r]
        if rows:
            total = sum(r["train_seconds"] for r in rows)
            print(f"{run.parent}: {len(rows)} epochs, train_seconds {total:.2f} "
                  f"(first {rows[0]['train_seconds']:.2f}, median of the rest "
                  f"{sorted(r['train_seconds'] for r in rows[1:])[len(rows[1:]) // 2] if len(rows) > 1 else 0:.3f}), "
                  f"last test {rows[-1].get('test_acc')}")
PY
}

for stage in "${stages[@]}"; do
  case "$stage" in
    env)
      { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
        python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
        nproc; } 2>&1 | tee -a "$log"
      step 120 data fetch
      ;;
    tests)  # the tests that need a GPU (skipped on the CPU), and the loader's
      echo "=== \$ pytest tests/test_graph_step.py tests/test_loader.py" | tee -a "$log"
      timeout 150 python3 -m pytest -q --tb=short -p no:cacheprovider tests/test_graph_step.py tests/test_loader.py 2>&1 | tail -40 | tee -a "$log"
      ;;
    smoke)  # eager, one epoch: does the CUDA path run at all
      step 120 train --recipe era-s7-step4 --device cuda --epochs 1 --no-progress --out "$work/smoke"
      train_seconds "$work/smoke"
      ;;
    runs)  # the 15-epoch era-s7-8172 run, compiled, fp32 and bf16; then 8 seeds stacked
      step 150 train --recipe era-s7-step4 --device cuda --compile --seeds 0 --no-progress --out "$work/gpu-1"
      step 150 train --recipe era-s7-step4 --device cuda --compile --amp --seeds 0 --no-progress --out "$work/gpu-1-amp"
      step 300 train --recipe era-s7-step4 --device cuda --compile --amp --seeds 0..7 --no-progress --out "$work/gpu-8-amp"
      train_seconds "$work/gpu-1" "$work/gpu-1-amp" "$work/gpu-8-amp"
      ;;
    bench)  # A (the seed pipeline) against B (tinycnn's CUDA defaults), and evaluation
      step 300 bench --device cuda --images 30000 --rounds 5
      step 200 bench --device cuda --measure eval --a eval_batch_size=256 --b eval_batch_size=10000
      ;;
    levers)
      step 300 bench --device cuda --a compile=false --b compile=true --images 60000
      step 300 bench --device cuda --a amp=false --b amp=true --images 60000
      step 300 bench --device cuda --a channels_last=false --b channels_last=true --images 60000
      ;;
    seeds)
      step 400 bench --device cuda --seeds 8
      ;;
    tta)
      step 300 bench --device cuda --time-to-accuracy --recipe default --out "$work/tta-default"
      ;;
    pending)  # not measured on a GPU yet: whole-step graphs alone, the folded evaluation,
              # and a 15-epoch run without torch.compile (graphs of eager kernels, no compile time)
      step 300 bench --device cuda --a cuda_graphs=false --b cuda_graphs=true --images 60000
      step 200 bench --device cuda --measure eval --a inference=plain --b inference=folded
      step 150 train --recipe era-s7-step4 --device cuda --seeds 0 --no-progress --out "$work/gpu-1-eager"
      train_seconds "$work/gpu-1-eager"
      ;;
    *) echo "unknown stage $stage (env tests smoke runs bench levers seeds tta pending)" >&2; exit 2 ;;
  esac
done
tar czf "$out/runs.tar.gz" --exclude='*.pt' -C "$work" . 2>/dev/null
exit 0
