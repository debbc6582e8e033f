#!/usr/bin/env bash
# The small CPU comparison of docs/training.md: four recipes on a dataset from the UTKFace dev pool.
# Usage: benchmarks/cpu_comparison/run.sh POOL_DIR WORK_DIR   (each command is wrapped in flock on shared machines)
set -euo pipefail
POOL=$1; WORK=$2; HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK" && cd "$WORK"
for s in mixed_50_cpu:3000 no_mask_cpu:1000 all_masked_cpu:1000; do
  name=${s%%:*}; n=${s##*:}
  [ -f "$name/samples.parquet" ] || synthface generate "$HERE/$name.yaml" --source "utkface:$POOL" -n "$n" --out "$name" --quiet
done
synthface train cpu_small --data mixed_50_cpu --out runs/paper
synthface train cpu_small --data mixed_50_cpu --out runs/no_attention --set model.attention=false
synthface train cpu_small --data mixed_50_cpu --out runs/gender_aware --set model.gender_aware_age=true
synthface train "$HERE/curriculum_cpu.yaml" --out runs/curriculum
for run in paper no_attention gender_aware curriculum; do
  synthface evaluate runs/$run/best.pt --data mixed_50_cpu --split val --out reports/$run/val --no-plots --quiet --gradcam-samples 0 --bootstrap 200
  synthface evaluate runs/$run/best.pt --data mixed_50_cpu --split test --out reports/$run/test --no-plots --quiet --gradcam-samples 0 --bootstrap 200
done
