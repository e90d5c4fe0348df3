#!/usr/bin/env bash
# Device round 16 (2x H200, about 4 min): the H200's all-reduce table inside CUDA graphs at TP=2 (the H200 profile's
# all-reduce rows are eager only; round 14, asked for 4x H200, ran on H100s), then the TP decode benchmark at TP 1
# and 2 on this host, a fresh measurement to check the H200 TP iterations of round 13 once merged.
# Usage on the device: bash lab/device/round16.sh   (results: $OUT/round16.tgz)
source lab/device/common.sh round16
stamp "setup done"
timeout 150 python3 -m engine.cli calibrate --gpu H200 --extra --parts allreduce --out "$OUT/h200x2_allreduce_graph.json.gz" \
  > "$OUT/allreduce.log" 2>&1; stamp "all-reduce tables done ($?)"
timeout 220 python3 bench/tp_decode.py --measure --tps 1,2 --out "$OUT/tp_decode_h200x2_round16.json" \
  > "$OUT/tp_decode.log" 2>&1; stamp "tp decode done ($?)"
tail -n 4 "$OUT/allreduce.log" "$OUT/tp_decode.log"; cat "$OUT/timeline.txt"
