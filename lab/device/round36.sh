#!/usr/bin/env bash
# Device round 36 (1x H100 or H200, about 8 min): W8A8 FP8 in the 8-bit-weight GEMM's kernel (e4m3 activations on
# the FP8 tensor cores, K split, kernels/w8a16_mma.w8a8). (1) its GPU correctness tests; (2) the launch-shape search
# at 32/64/128 rows on the 8B, a Qwen-7B-shaped and a 70B TP=2 shard's projections (bench/quant_tune.py --formats
# w8a8); (3) the engine's FP8 decode at batch 64 and 4096-token prefill with it at 17-128 rows beside the
# shipped paths (bench/quant_speed.py --skip-gemms --fp8-w8a8 17 128). Usage: bash lab/device/round36.sh
source lab/device/common.sh round36
stamp "setup done"
timeout 150 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "w8a8 or fp8_linear or 8bit_weight" > "$OUT/tests.log" 2>&1
stamp "tests exit $?"; tail -n 5 "$OUT/tests.log"
timeout 200 python3 bench/quant_speed.py --skip-gemms --fp8-w8a8 17 128 --out "$OUT/quant_speed_round36.json" > "$OUT/quant_speed.log" 2>&1
stamp "quant_speed exit $?"; tail -n 12 "$OUT/quant_speed.log"
timeout 300 python3 bench/quant_tune.py --formats w8a8 --ms 32 64 128 --shapes 8b qwen7b 70b-tp2 \
  --out "$OUT/quant_tune_round36.json" > "$OUT/quant_tune.log" 2>&1
stamp "quant_tune exit $?"
grep -v "^\s*$" "$OUT/quant_tune.log" | tail -n 80; cat "$OUT/timeline.txt"
