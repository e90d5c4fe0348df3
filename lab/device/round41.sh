#!/usr/bin/env bash
# Device round 41 (1x H200, about 1.5 min): measurement only -- issue #25's INT8 target (W8A16 >= 1.3x cuBLAS bf16 at
# M = 16-64 on the 8B's projections), measured so far on the H100 only: bench/quant_speed.py's GEMM part on an H200.
# Usage: bash lab/device/round41.sh
source lab/device/common.sh round41
stamp "setup done"
timeout 150 python3 bench/quant_speed.py --skip-engine --ms 16 32 64 --out "$OUT/quant_speed_h200_gemms_round41.json" \
  > "$OUT/quant_speed.log" 2>&1
stamp "quant_speed exit $?"
tail -n 8 "$OUT/quant_speed.log"; cat "$OUT/timeline.txt"
