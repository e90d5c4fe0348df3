#!/usr/bin/env bash
# Device round 46 (1 GPU, about 1.5 min; measurement only): is FP8 prefill short of 1.5x bf16 because of the GEMM's
# scaling mode? torch._scaled_mm with per-row activation and per-channel weight scales (what the engine runs from
# 65 rows) against cuBLASLt's tensor-wise FP8 GEMM (unit scales, both scales applied after) on the 8B's projections
# at 512-4096 rows (bench/quant_tune.py --no-search). Usage: bash lab/device/round46.sh
source lab/device/common.sh round46
stamp "setup done"
timeout 150 python3 bench/quant_tune.py --formats fp8 --no-search --ms 512 1024 2048 4096 --shapes 8b \
  --out "$OUT/quant_tune_prefill_round46.json" > "$OUT/quant_tune.log" 2>&1; stamp "quant_tune exit $?"
grep -v "^\s*$" "$OUT/quant_tune.log" | tail -n 16; cat "$OUT/timeline.txt"
