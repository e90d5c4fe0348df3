#!/usr/bin/env bash
# Device round 4 (4 GPUs, about 4 minutes): held-out grid 2 (lab/validation/heldout/grid2.yaml). TP=2 runs on
# GPUs 0-1 (one process each, replicas in turn), the other runs on GPUs 2 and 3 (replica 0 and 1 side by side).
# Usage on the device: bash lab/device/round4.sh   (results: $OUT/round4.tgz)
source lab/device/common.sh round4
G=lab/validation/heldout/grid2.yaml; H=$OUT/heldout
stamp "setup done"
(serve_replicas $G tp 0,1 140 75 g2-tp2-8b-mns128-sharegpt-0.95 g2-tp2-8b-calib-0.5; stamp "tp lane done") &
serve_side_by_side $G q 140 190
wait
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 20; cat "$OUT/timeline.txt"
