#!/usr/bin/env bash
# Trials an hour of `tinycnn search`, one trial at a time against two, on the same work: every
# trial trains the one design of benchmarks/one_design_space.toml on the full training set less
# the validation split, eager (so that no trial finds another's compiled code in the cache).
#
#     bash benchmarks/search_throughput.sh OUT [TRIALS] [EPOCHS] [extra search flags...]
set -euo pipefail
out=${1:?usage: search_throughput.sh OUT [TRIALS] [EPOCHS] [flags...]}
trials=${2:-4}
epochs=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
for workers in 1 2; do
    dir="$out/workers-$workers"
    rm -rf "$dir"
    start=$(date +%s.%N)
    tinycnn search --space "$here/one_design_space.toml" --trials "$trials" --epochs "$epochs" \
        --workers "$workers" --no-compile --out "$dir" "$@" > "$out/workers-$workers.log"
    end=$(date +%s.%N)
    python3 - "$dir" "$workers" "$start" "$end" "$trials" <<'PY'
import csv, sys
d, workers, start, end, trials = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = [r for r in csv.DictReader(open(f"{d}/trials.csv")) if r["state"] == "complete"]
seconds = sorted(float(r["seconds"]) for r in rows)
wall = end - start
print(f"workers {workers}: {len(rows)} of {trials} trials complete in {wall:.1f} s wall, "
      f"{3600 * len(rows) / wall:.1f} trials an hour; a trial's training {seconds[len(seconds) // 2]:.1f} s (median)")
PY
done
