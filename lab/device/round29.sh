#!/usr/bin/env bash
# Device round 28 (1 GPU, about 2 min): the 8-bit GEMM tables as the engine now serves them (split-K partials added
# inside the kernel, kernels/w8a16_mma.py FUSED_SPLIT; INT8 dequantize + cuBLAS from 256 rows) for the product
# profile of the GPU that comes, and the GPU tests of the quantized paths.
# Usage on the device: bash lab/device/round29.sh   (results: $OUT/round29.tgz)
source lab/device/common.sh round29
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then GPU=H200; TAG=h200; else stamp "not an H200: nothing done"; exit 0; fi
timeout 150 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts gemm \
  --out "$OUT/${TAG}_fp8_int8_gemms_v5.json.gz" > "$OUT/gemms.log" 2>&1; stamp "gemm tables ($GPU) exit $?"
timeout 120 python3 -m pytest -q tests/test_gpu_tp_quant.py -k "logits or dequantize or fp8_linear" \
  > "$OUT/gpu_tests.log" 2>&1; stamp "gpu tests exit $?"; tail -3 "$OUT/gpu_tests.log"
tail -n 2 "$OUT/gemms.log"; cat "$OUT/timeline.txt"
