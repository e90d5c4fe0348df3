#!/usr/bin/env bash
# Device round 18b (1 GPU, about 4 min): the launch-shape search again with the swapped (weights-first) kernel
# and cuBLASLt's unit-scale FP8 GEMM beside torch._scaled_mm's row-scaled one.
# Usage on the device: bash lab/device/round18b.sh   (results: $OUT/round18b.tgz)
source lab/device/common.sh round18b
stamp "setup done"
timeout 120 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "fp8_linear or w8a16" \
  > "$OUT/gpu_tests.log" 2>&1; stamp "gpu tests exit $?"; tail -3 "$OUT/gpu_tests.log"
timeout 420 python3 bench/quant_tune.py --out "$OUT/quant_tune.json" > "$OUT/quant_tune.log" 2>&1
stamp "tune exit $?"; cat "$OUT/timeline.txt"
