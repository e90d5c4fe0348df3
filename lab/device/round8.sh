#!/usr/bin/env bash
# Device round 8 (4x H100, < 10 min): grid 5 (lab/validation/heldout/grid5.yaml), registered before this call; no
# calibration in this round (grid 5 is scored with the H100 product profile as committed). TP=2 runs on GPUs 0-1
# (replicas in turn), single-GPU runs on GPUs 2 and 3 (replica 0 and 1 side by side), then the TP=4 run on all four.
# Usage on the device: bash lab/device/round8.sh   (results: $OUT/round8.tgz)
source lab/device/common.sh round8
G=lab/validation/heldout/grid5.yaml; H=$OUT/heldout; mkdir -p "$H"
stamp "setup done"
(serve_replicas $G tp 0,1 300 100 g5-tp2-8b-azureconv-mns128-0.95 g5-tp2-qwen32b-azurecode-0.5; stamp "tp lane done") &
serve_side_by_side $G q 260 330
wait
serve_replicas $G tp4 0,1,2,3 500 110 g5-tp4-70b-azureconv-0.95
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
