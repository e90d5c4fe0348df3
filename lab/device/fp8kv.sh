#!/usr/bin/env bash
# The FP8-KV device round (1x H100, about 3 min), shared by rounds 9, 10 and 12 (each ran it on the code of its
# commit): NAME names the round's results ($OUT/NAME.tgz); K, if given, selects the tests/test_kernels.py tests.
#   1. GPU tests: tests/test_kernels.py (the paged-decode instances, the FP8-cache kernel, the FP8-KV engine against
#      the PyTorch path, ...) and the 1-GPU quantized-engine test;
#   2. bench/kv_fp8_decode.py: 8B decode at batch 64, ~2000 tokens of context, bf16 KV vs FP8 KV, beside the planner;
#   3. grid 3's FP8-KV run served again (a re-run of a scored cell: post hoc, not a held-out figure).
# Usage on the device: bash lab/device/fp8kv.sh NAME ["K expression"]
source lab/device/common.sh "$1"
K=(); if [ -n "${2:-}" ]; then K=(-k "$2"); fi
stamp "setup done"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_kernels.py "${K[@]}" \
  "tests/test_gpu_tp_quant.py::test_fp8_and_int8_engines_logits_stay_near_the_float32_reference" -s \
  > "$OUT/gpu_tests.log" 2>&1; stamp "GPU tests done ($?)"
timeout 200 python3 bench/kv_fp8_decode.py --out "$OUT/kv_fp8_decode_h100.json" > "$OUT/kv_fp8_decode.log" 2>&1
stamp "kv fp8 bench done ($?)"
mkdir -p "$OUT/heldout/q"
for r in 0 1; do
  if [ "$(el)" -lt 400 ]; then
    timeout 90 python3 -m lab.heldout serve --grid lab/validation/heldout/grid3.yaml --list q --only g3-fp8kv-8b-sharegpt-0.95 \
      --replica $r --out "$OUT/heldout/q" >> "$OUT/heldout/q/lane.log" 2>&1; stamp "fp8kv replica $r done ($?)"
  fi
done
tail -n 5 "$OUT/gpu_tests.log"; grep -e "fp8-KV\|FP8 KV\|KV " "$OUT/gpu_tests.log" "$OUT/kv_fp8_decode.log"
grep -v -e Warning -e return "$OUT/heldout/q/lane.log" | tail -n 4; cat "$OUT/timeline.txt"
