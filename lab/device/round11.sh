#!/usr/bin/env bash
# Device round 11 (1x H100, about 3 min): decode attention over an FP8 KV cache, as the paged kernel reads it
# (round 10: the engine's FP8-KV decode is 1.02x bf16's, where the planner's halved-bytes rule said 1.17x), for
# the calibrated models' layouts and the shape models' layouts at TP 1/2/4. Merged into the H100 product
# profile with planner profile-add (tests/test_calibrated.py H100_EXTRAS).
# Usage on the device: bash lab/device/round11.sh   (results: $OUT/round11.tgz)
source lab/device/common.sh round11
stamp "setup done"
timeout 300 python3 -m engine.cli calibrate --gpu H100-SXM --extra --kernels --parts attention_fp8kv \
  --models llama-3.2-1b,llama-3.1-8b --shape-models qwen2.5-3b,qwen2.5-7b,qwen2.5-32b,llama-3.1-70b \
  --out "$OUT/h100_attention_fp8kv.json.gz" > "$OUT/attention_fp8kv.log" 2>&1; stamp "FP8-KV attention done ($?)"
tail -n 15 "$OUT/attention_fp8kv.log"; cat "$OUT/timeline.txt"
