#!/usr/bin/env bash
# Device round 5, call A (4x H100, < 8 min): the all-reduce table eager and inside CUDA graphs (TP 2, 4), the TP
# decode benchmark (TP 1/2/4) on this machine, then grid 3's TP=4 run (70B) on all four GPUs, two replicas in turn.
# Protocol: docs/validation_protocol.md, "Grid 3". Usage on the device: bash lab/device/round5a.sh ($OUT/round5a.tgz)
source lab/device/common.sh round5a
nvidia-smi topo -m >> "$OUT/machine.txt" 2>&1
stamp "setup done"
timeout 150 python3 -m engine.cli calibrate --gpu H100-SXM --extra --parts allreduce --out "$OUT/extra_ar.json.gz" \
  > "$OUT/allreduce.log" 2>&1; stamp "all-reduce tables done ($?)"
timeout 230 python3 bench/tp_decode.py --measure --tps 1,2,4 --out "$OUT/tp_decode_h100x4.json" \
  > "$OUT/tp_decode.log" 2>&1; stamp "tp decode done ($?)"
G=lab/validation/heldout/grid3.yaml; H=$OUT/heldout
serve_replicas $G tp4 0,1,2,3 420 110 g3-tp4-70b-sharegpt-0.95
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 8; tail -n 6 "$OUT/tp_decode.log" "$OUT/allreduce.log"
cat "$OUT/timeline.txt"
