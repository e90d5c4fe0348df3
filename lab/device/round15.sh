#!/usr/bin/env bash
# Device round 15 (4x H100, < 8 min): grid 6 (lab/validation/heldout/grid6.yaml), registered before this call; no
# calibration in this round. The TP=2 run on GPUs 0-1 (replicas in turn), single-GPU runs on GPUs 2 and 3 (replica 0
# and 1 side by side), then the TP=4 run on all four. Score only if machine.txt lists H100s (a call for one kind
# was served by the other twice in the session that wrote this).
# Usage on the device: bash lab/device/round15.sh   (results: $OUT/round15.tgz)
source lab/device/common.sh round15
G=lab/validation/heldout/grid6.yaml; H=$OUT/heldout; mkdir -p "$H"
stamp "setup done"
(serve_replicas $G tp 0,1 300 110 g6-tp2-8b-mns256-azurecode-0.95; stamp "tp lane done") &
serve_side_by_side $G q 280 330
wait
serve_replicas $G tp4 0,1,2,3 480 110 g6-tp4-8b-mns256-sharegpt-0.95
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
