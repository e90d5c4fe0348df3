#!/usr/bin/env bash
# Device round 20 (1 GPU, about 5 min): the refined launch rule and FP8 path choice as committed -- GPU tests;
# the rule and the engine's FP8 path on the three shape sets without search; the FP8/INT8 GEMM tables the
# profile takes (engine calibrate --extra --parts gemm); the engine's quantized decode/prefill against bf16.
# Usage on the device: bash lab/device/round20.sh   (results: $OUT/round20.tgz)
source lab/device/common.sh round20
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then GPU=H200; NAME=h200_fp8_int8_gemms_v3; else GPU=H100-SXM; NAME=h100_fp8_int8_gemms_v3; fi
timeout 150 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "fp8 or w8a16 or logits" \
  > "$OUT/gpu_tests.log" 2>&1; stamp "gpu tests exit $?"; tail -3 "$OUT/gpu_tests.log"
timeout 90 python3 bench/quant_tune.py --no-search --shapes 8b qwen7b 70b-tp2 --out "$OUT/quant_tune_rule.json" \
  > "$OUT/quant_tune_rule.log" 2>&1; stamp "rule check exit $?"
timeout 200 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts gemm \
  --out "$OUT/$NAME.json.gz" > "$OUT/gemms.log" 2>&1; stamp "gemm tables ($GPU) exit $?"
timeout 150 python3 bench/quant_speed.py --skip-gemms --out "$OUT/quant_engine.json" > "$OUT/quant_engine.log" 2>&1
stamp "engine exit $?"; tail -6 "$OUT/quant_engine.log"; cat "$OUT/timeline.txt"
