#!/usr/bin/env bash
# Device round 33 (4x H200, about 5 min): what the H200 profile lacks for TP=4 and 8-bit serving -- TP=4 serving
# iterations of the 8B from a ramp up to 256 sequences (its TP=4 host overhead was carried from TP=2), the TP decode
# benchmark afresh on this host (TP 1/2/4), then the 8B's FP8 and INT8 serving iterations on one GPU (as round 31 on
# the H100). Only on H200s; every step's exit status in the timeline.
# Usage on the device: bash lab/device/round33.sh   (results: $OUT/round33.tgz)
source lab/device/common.sh round33
stamp "setup done"
if grep -q H200 "$OUT/machine.txt" && [ "$(grep -c '^GPU' "$OUT/machine.txt")" -ge 4 ]; then
  timeout 200 python3 -m engine.cli calibrate --gpu H200 --extra --kernels --parts iterations --tp 4 \
    --models llama-3.1-8b --ramp-max-seqs 256 --out "$OUT/h200x4_tp4_iterations_8b_mns256.json.gz" \
    > "$OUT/tp4.log" 2>&1; stamp "TP=4 iterations exit $?"; pack
  timeout 200 python3 bench/tp_decode.py --measure --tps 1,2,4 --out "$OUT/tp_decode_h200x4_round33.json" \
    > "$OUT/tp_decode.log" 2>&1; stamp "tp decode exit $?"; pack
  for q in fp8 int8; do
    CUDA_VISIBLE_DEVICES=0 timeout 150 python3 -m engine.cli calibrate --gpu H200 --extra --kernels --parts iterations \
      --quantization $q --models llama-3.1-8b --out "$OUT/h200_${q}_iterations_8b.json.gz" > "$OUT/iterations_$q.log" 2>&1
    stamp "$q iterations exit $?"; pack
  done
  tail -n 3 "$OUT/tp4.log" "$OUT/tp_decode.log" "$OUT"/iterations_*.log
else
  stamp "not 4x H200: nothing run"
fi
cat "$OUT/timeline.txt"
