#!/usr/bin/env bash
# Device round 6, call A (4x H100, < 7 min): the tables grid 4 tests (docs/validation_protocol.md, "Grid 4") --
# attention layouts and bf16 GEMM shapes of the uncalibrated model shapes, one model per GPU side by side; then
# TP=2 and TP=4 serving iterations with the kernels on.  Usage on the device: bash lab/device/round6a.sh
source lab/device/common.sh round6a
stamp "setup done"
i=0
for m in qwen2.5-3b qwen2.5-7b qwen2.5-32b llama-3.1-70b,llama-3.1-8b; do
  [ $i -ge 4 ] && break
  (CUDA_VISIBLE_DEVICES=$i timeout 200 python3 -m engine.cli calibrate --gpu H100-SXM --extra --kernels \
     --parts attention,gemm_bf16 --shape-models $m --out "$OUT/extra_shapes_$i.json.gz" > "$OUT/shapes_$i.log" 2>&1
   stamp "shapes $m done ($?)") &
  i=$((i + 1))
done
wait
CUDA_VISIBLE_DEVICES=0,1 timeout 120 python3 -m engine.cli calibrate --gpu H100-SXM --extra --kernels --parts iterations \
  --tp 2 --out "$OUT/extra_tp2.json.gz" > "$OUT/tp2.log" 2>&1; stamp "TP=2 iterations done ($?)"
if [ "$(el)" -lt 330 ]; then
  timeout 130 python3 -m engine.cli calibrate --gpu H100-SXM --extra --kernels --parts iterations \
    --tp 4 --out "$OUT/extra_tp4.json.gz" > "$OUT/tp4.log" 2>&1; stamp "TP=4 iterations done ($?)"
fi
tail -n 3 "$OUT"/*.log; cat "$OUT/timeline.txt"
