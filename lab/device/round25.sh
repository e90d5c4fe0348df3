#!/usr/bin/env bash
# Device round 25 (1x H100, about 2.5 min): the H100's 8-bit GEMM tables as the engine now serves them (INT8 with
# dequantize + cuBLAS from 256 rows; FP8 as in round 20) for the product profile, and the GPU tests of the
# quantized paths (the INT8 engine's logits now go through the dequantize path at prefill).
# Usage on the device: bash lab/device/round25.sh   (results: $OUT/round25.tgz)
source lab/device/common.sh round25
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then GPU=H200; TAG=h200; else GPU=H100-SXM; TAG=h100; fi
timeout 150 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts gemm \
  --out "$OUT/${TAG}_fp8_int8_gemms_v4.json.gz" > "$OUT/gemms.log" 2>&1; stamp "gemm tables ($GPU) exit $?"
timeout 120 python3 -m pytest -q tests/test_gpu_tp_quant.py -k "logits or dequantize or fp8_linear" \
  > "$OUT/gpu_tests.log" 2>&1; stamp "gpu tests exit $?"; tail -3 "$OUT/gpu_tests.log"
tail -n 2 "$OUT/gemms.log"; cat "$OUT/timeline.txt"
