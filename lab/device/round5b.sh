#!/usr/bin/env bash
# Device round 5, call B (4x H100, < 5 min): grid 3's TP=2 runs on GPUs 0-1 (one process each, replicas in turn)
# and its single-GPU runs on GPUs 2 and 3 (replica 0 and 1 side by side); then the TP=4 run again (call A's failed
# to start: the weights were allocated in float32 first, and the KV pool's sizing counted that memory as used).
# Usage on the device: bash lab/device/round5b.sh   (results: $OUT/round5b.tgz)
source lab/device/common.sh round5b
G=lab/validation/heldout/grid3.yaml; H=$OUT/heldout
stamp "setup done"
(serve_replicas $G tp 0,1 200 90 g3-tp2-qwen32b-sharegpt-0.95 g3-tp2-8b-azurecode-0.5; stamp "tp lane done") &
serve_side_by_side $G q 190 260
wait
serve_replicas $G tp4 0,1,2,3 420 110 g3-tp4-70b-sharegpt-0.95
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 20; cat "$OUT/timeline.txt"
