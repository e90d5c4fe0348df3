#!/usr/bin/env bash
# Device round 23 (1x H100, about 8 min): (1) the GPU test of the one-pass INT8 dequantize; (2) held-out grid 8's
# two INT8 runs as registered (INT8_DEQUANT_ROWS is None, so the INT8 path is the registered one), replica 0 then
# 1, none started after 230 s; (3) kernel-by-kernel FP8 decode steps at batch 16 and 32 beside bf16 at 32 (grid 8's
# FP8 miss: 0.3-0.6 ms more GPU work per step than the model); (4) INT8 prefill: the 8-bit-weight GEMM against
# dequantize + cuBLAS at M up to 8192, and the 8B engine's 4096-token prefill with INT8_DEQUANT_ROWS=512.
# Usage on the device: bash lab/device/round23.sh   (results: $OUT/round23.tgz)
source lab/device/common.sh round23
stamp "setup done"
timeout 90 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "dequantize or w8a16" > "$OUT/gpu_tests.log" 2>&1
stamp "gpu tests exit $?"; tail -3 "$OUT/gpu_tests.log"
if grep -q "H100" "$OUT/machine.txt"; then
  serve_replicas lab/validation/heldout/grid8.yaml q 0 230 80 g8-int8-8b-azureconv-0.5 g8-int8-8b-sharegpt-0.95
else
  stamp "not an H100: grid 8 not served"
fi
for spec in "fp8 16" "fp8 32" "bf16 32"; do
  set -- $spec
  q=$([ "$1" = bf16 ] || echo "--quantization $1")
  timeout 60 python3 -m lab.studies.decode_breakdown.decode_breakdown --model llama-3.1-8b --batch $2 $q \
    --out "$OUT/decode_breakdown_8b_$1_b$2.json" > "$OUT/decode_breakdown_8b_$1_b$2.log" 2>&1
  stamp "breakdown $1 b$2 exit $?"
done
timeout 200 python3 bench/quant_speed.py --int8-dequant-rows 512 --out "$OUT/quant_speed.json" \
  > "$OUT/quant_speed.log" 2>&1; stamp "quant_speed exit $?"
tail -8 "$OUT/quant_speed.log"; grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 20
head -4 "$OUT"/decode_breakdown_*.log; cat "$OUT/timeline.txt"
