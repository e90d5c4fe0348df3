#!/usr/bin/env bash
# Device round 17 (2x H200, about 4 min): held-out grid 7 (lab/validation/heldout/grid7.yaml), registered before
# this call: two TP=2 runs of the 8B, replicas in turn. No calibration. Score only if machine.txt lists H200s.
# Usage on the device: bash lab/device/round17.sh   (results: $OUT/round17.tgz)
source lab/device/common.sh round17
G=lab/validation/heldout/grid7.yaml; H=$OUT/heldout; mkdir -p "$H"
stamp "setup done"
serve_replicas $G tp 0,1 400 120 g7-tp2-8b-sharegpt-0.5 g7-tp2-8b-mns128-azureconv-0.95
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
