#!/usr/bin/env bash
# The GPU figures of docs/performance.md: three runs of bench_step.py on one CUDA device.
#   bash benchmarks/run_gpu.sh [LOG_DIR]      (each run is also written to LOG_DIR; PYTHON picks the interpreter)
set -uo pipefail
cd "$(dirname "$0")/.."
log_dir=${1:-bench_logs}
mkdir -p "$log_dir"
export PYTHONUNBUFFERED=1
run() {
    local name=$1
    shift
    echo "== $name: python benchmarks/bench_step.py --device cuda $*"
    "${PYTHON:-python}" benchmarks/bench_step.py --device cuda "$@" 2>&1 | tee "$log_dir/$name.txt"
}
# The paper's batch (64), bf16 autocast, all variants, both front-end settings.
run bf16_b64_3s --bf16 --batch-size 64 --seconds 3 --variants vanilla naive plain2N turbo --warmup 3 --steps 20
# Plain fp32 (no TF32), trainable front end.
run fp32_b64_3s --batch-size 64 --seconds 3 --front-end trainable --warmup 2 --steps 10
# Longer utterances, where attention grows and the front end's share shrinks.
run bf16_b32_8s --bf16 --batch-size 32 --seconds 8 --warmup 2 --steps 10
