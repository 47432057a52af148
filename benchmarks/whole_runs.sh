#!/bin/bash
# Whole `tinycnn train` runs under several settings, in turn, for several rounds: the wall
# time of each command, and each run's directory (metrics.jsonl: seconds per epoch, time to
# accuracy) under OUT/<label>-<round>.
#
#   bash benchmarks/whole_runs.sh OUT ROUNDS "auto=" "eager-fp32=--no-compile --no-amp" ...
#
# Each argument after ROUNDS is LABEL=FLAGS (FLAGS added to `tinycnn train --no-progress`).
# Run it on a machine with nothing else running: the settings share the machine's noise
# only because they alternate.
set -euo pipefail
out=${1:?usage: whole_runs.sh OUT ROUNDS LABEL=FLAGS...}
rounds=${2:?usage: whole_runs.sh OUT ROUNDS LABEL=FLAGS...}
shift 2
[ $# -gt 0 ] || { echo "whole_runs.sh: give at least one LABEL=FLAGS" >&2; exit 2; }
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for arm in "$@"; do
    label=${arm%%=*}
    flags=${arm#*=}
    dir="$out/$label-$r"
    [ -e "$dir" ] && { echo "whole_runs.sh: $dir exists; choose another OUT" >&2; exit 1; }
    start=$(date +%s.%N)
    # shellcheck disable=SC2086  # FLAGS are words
    tinycnn train $flags --no-progress --out "$dir" > "$dir.log" 2>&1
    end=$(date +%s.%N)
    echo "$label round $r: $(python3 -c "print(round($end - $start, 1))") s wall, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/wall.txt"
  done
done
