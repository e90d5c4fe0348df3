#!/usr/bin/env bash
# Device round 15b (2x H100, about 7 min): grid 6 (lab/validation/heldout/grid6.yaml) as amended before any grid-6
# run (docs/validation_protocol.md, "Grid 6", amendment 1): no 4-GPU machine is lent in the session that runs it, so
# the TP=4 run is left out; the TP=2 run on both GPUs (replicas in turn), then the single-GPU runs with replica 0 on
# GPU 0 and replica 1 on GPU 1 side by side. No calibration in this round. Score only if machine.txt lists H100s.
# Usage on the device: bash lab/device/round15b.sh   (results: $OUT/round15b.tgz)
source lab/device/common.sh round15b
G=lab/validation/heldout/grid6.yaml; H=$OUT/heldout; mkdir -p "$H"
stamp "setup done"
serve_replicas $G tp 0,1 200 110 g6-tp2-8b-mns256-azurecode-0.95
stamp "tp lane done"
serve_side_by_side $G q 240 320 0
wait
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
