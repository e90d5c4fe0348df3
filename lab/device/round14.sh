#!/usr/bin/env bash
# Device round 14 (4x H200, about 1 min): the H200's all-reduce table, eager and inside CUDA graphs (TP 2, 4). Round 13
# was asked for 4x H100 and got 4x H200: its TP=2/4 iterations (max_num_seqs 256) and TP decode benchmark are H200
# measurements, and the H200 profile's all-reduce rows are eager only -- its TP fit would subtract 40-60 us per call
# where the graphs pay 12-16. Usage on the device: bash lab/device/round14.sh   (results: $OUT/round14.tgz)
source lab/device/common.sh round14
stamp "setup done"
timeout 150 python3 -m engine.cli calibrate --gpu H200 --extra --parts allreduce --out "$OUT/h200x4_allreduce_graph.json.gz" \
  > "$OUT/allreduce.log" 2>&1; stamp "all-reduce tables done ($?)"
tail -n 4 "$OUT/allreduce.log"; cat "$OUT/timeline.txt"
