#!/usr/bin/env bash
# Device round 40 (1x H200, about 2 min): measurement only -- the W8A8 launch-shape search at 8 and 16 rows on the
# 8B's projections beside the path the engine takes there (the 8-bit-weight GEMM with bf16 activations), to see
# whether FP8_W8A8_ROWS should start below 17 (lab/studies/decode_breakdown/README.md). Usage: bash lab/device/round40.sh
source lab/device/common.sh round40
stamp "setup done"
timeout 200 python3 bench/quant_tune.py --formats w8a8 --ms 8 16 --shapes 8b --out "$OUT/quant_tune_h200_round40.json" \
  > "$OUT/quant_tune.log" 2>&1
stamp "quant_tune exit $?"
grep -v "^\s*$" "$OUT/quant_tune.log" | tail -n 12; cat "$OUT/timeline.txt"
