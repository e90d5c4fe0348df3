#!/usr/bin/env bash
# Device round 13 (4x H100, about 5 min): TP=2 and TP=4 serving iterations of the 8B from ramps whose engine takes
# up to 256 sequences (--ramp-max-seqs 256; the earlier TP ramps stopped at 64, so the TP=4 host cost at batch 256
# was extrapolated: +40% on bench/tp_decode.py's batch-256 row), then the TP decode benchmark afresh on this machine.
# Usage on the device: bash lab/device/round13.sh   (results: $OUT/round13.tgz)
source lab/device/common.sh round13
stamp "setup done"
CUDA_VISIBLE_DEVICES=0,1 timeout 150 python3 -m engine.cli calibrate --gpu H100-SXM --extra --kernels --parts iterations \
  --tp 2 --models llama-3.1-8b --ramp-max-seqs 256 --out "$OUT/h100x4_tp2_iterations_8b_mns256.json.gz" \
  > "$OUT/tp2.log" 2>&1; stamp "TP=2 iterations done ($?)"
timeout 200 python3 -m engine.cli calibrate --gpu H100-SXM --extra --kernels --parts iterations \
  --tp 4 --models llama-3.1-8b --ramp-max-seqs 256 --out "$OUT/h100x4_tp4_iterations_8b_mns256.json.gz" \
  > "$OUT/tp4.log" 2>&1; stamp "TP=4 iterations done ($?)"
timeout 200 python3 bench/tp_decode.py --measure --tps 1,2,4 --out "$OUT/tp_decode_h100x4_round13.json" \
  > "$OUT/tp_decode.log" 2>&1; stamp "tp decode done ($?)"
tail -n 4 "$OUT/tp2.log" "$OUT/tp4.log" "$OUT/tp_decode.log"; cat "$OUT/timeline.txt"
