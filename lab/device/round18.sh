#!/usr/bin/env bash
# Device round 18 (1 GPU, about 9 min): the 8-bit-weight GEMM with FP8 weights (kernels/w8a16_mma.py) --
# its correctness tests on the GPU, the launch-shape search (bench/quant_tune.py), then the engine's quantized
# decode/prefill against bf16 (bench/quant_speed.py --skip-gemms) with the kernels as committed.
# Usage on the device: bash lab/device/round18.sh   (results: $OUT/round18.tgz)
source lab/device/common.sh round18
stamp "setup done"
timeout 120 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "fp8_linear or w8a16 or logits" \
  > "$OUT/gpu_tests.log" 2>&1; stamp "gpu tests exit $?"; tail -3 "$OUT/gpu_tests.log"
timeout 330 python3 bench/quant_tune.py --out "$OUT/quant_tune.json" > "$OUT/quant_tune.log" 2>&1
stamp "tune exit $?"
timeout 200 python3 bench/quant_speed.py --skip-gemms --out "$OUT/quant_engine.json" > "$OUT/quant_engine.log" 2>&1
stamp "engine exit $?"; tail -6 "$OUT/quant_engine.log"; cat "$OUT/timeline.txt"
