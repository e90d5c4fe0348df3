#!/usr/bin/env bash
# Device round 35 (1x H100, about 4.5 min): bench/quant_tune.py afresh with the 8-bit-weight GEMM that adds its
# split-K partials in-kernel (round 27): whether engine.quant.fp8_streams (read off rounds 18b/18c, before that
# change) still picks the faster of the 8-bit-weight GEMM and torch._scaled_mm at 16-64 rows. Measurement only:
# a rule change would also need the FP8 tables re-measured. Usage: bash lab/device/round35.sh
source lab/device/common.sh round35
stamp "setup done"
timeout 420 python3 bench/quant_tune.py --out "$OUT/quant_tune_h100_round35.json" > "$OUT/quant_tune.log" 2>&1
stamp "quant_tune exit $?"
tail -n 60 "$OUT/quant_tune.log"; cat "$OUT/timeline.txt"
