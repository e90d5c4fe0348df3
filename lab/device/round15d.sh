#!/usr/bin/env bash
# Device round 15d (4x H100, about 5 min): grid 6's TP runs (amendment 3, docs/validation_protocol.md): the TP=2 run
# on GPUs 0-1, then the TP=4 run on all four, replicas in turn. No calibration. Score only if machine.txt lists H100s.
# Usage on the device: bash lab/device/round15d.sh   (results: $OUT/round15d.tgz)
source lab/device/common.sh round15d
G=lab/validation/heldout/grid6.yaml; H=$OUT/heldout; mkdir -p "$H"
stamp "setup done"
serve_replicas $G tp 0,1 200 110 g6-tp2-8b-mns256-azurecode-0.95
serve_replicas $G tp4 0,1,2,3 420 130 g6-tp4-8b-mns256-sharegpt-0.95
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
