#!/usr/bin/env bash
# Device round 27 (1x H100, about 4 min): the 8-bit-weight GEMM adds its split-K partials inside the kernel
# (each tile's last program; kernels/w8a16_mma.py FUSED_SPLIT) -- GPU tests of both formats against the sum taken
# after the kernel, in graphs and call after call; the GEMMs at M = 1-64 fused vs unfused vs cuBLAS bf16; the
# engine's 8B decode at batch 64 and 4096-token prefill, bf16 / FP8 / INT8.
# Usage on the device: bash lab/device/round27.sh   (results: $OUT/round27.tgz)
source lab/device/common.sh round27
stamp "setup done"
timeout 120 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "split_k or w8a16 or fp8_weights or dequantize" \
  > "$OUT/gpu_tests.log" 2>&1; rc=$?; stamp "gpu tests exit $rc"; tail -3 "$OUT/gpu_tests.log"
if [ $rc -eq 0 ]; then
  timeout 240 python3 bench/quant_speed.py --ms 1 8 16 32 64 --out "$OUT/quant_speed.json" > "$OUT/quant_speed.log" 2>&1
  stamp "quant_speed exit $?"; cat "$OUT/quant_speed.log" | grep -v Warn | tail -32
else
  grep -E "Error|assert|FAILED" "$OUT/gpu_tests.log" | head -20
fi
cat "$OUT/timeline.txt"
