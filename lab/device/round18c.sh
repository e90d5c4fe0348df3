#!/usr/bin/env bash
# Device round 18c (1 GPU, about 6 min): the launch-shape rule (w8a16_mma.config) and Fp8Linear's path choice as
# committed -- GPU tests; the search on shapes the rule was not read from (Qwen2.5-7B, Llama-70B TP=2 shard) with
# the rule beside the best; the rule on the 8B without search; then the engine's quantized decode/prefill.
# Usage on the device: bash lab/device/round18c.sh   (results: $OUT/round18c.tgz)
source lab/device/common.sh round18c
stamp "setup done"
timeout 150 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "fp8 or w8a16 or logits" \
  > "$OUT/gpu_tests.log" 2>&1; stamp "gpu tests exit $?"; tail -3 "$OUT/gpu_tests.log"
timeout 300 python3 bench/quant_tune.py --shapes qwen7b 70b-tp2 --ms 16 32 64 --out "$OUT/quant_tune_heldout.json" \
  > "$OUT/quant_tune_heldout.log" 2>&1; stamp "tune held-out shapes exit $?"
timeout 60 python3 bench/quant_tune.py --no-search --out "$OUT/quant_tune_8b_rule.json" \
  > "$OUT/quant_tune_8b_rule.log" 2>&1; stamp "8b rule exit $?"
timeout 150 python3 bench/quant_speed.py --skip-gemms --out "$OUT/quant_engine.json" > "$OUT/quant_engine.log" 2>&1
stamp "engine exit $?"; tail -6 "$OUT/quant_engine.log"; cat "$OUT/timeline.txt"
