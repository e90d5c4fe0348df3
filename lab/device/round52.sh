#!/usr/bin/env bash
# Device round 52 (2x H200, about 2 min; measurement only): the 8B's decode step at TP=1 and TP=2, batch 1/16/64/256,
# on a host no calibration ran on (bench/tp_decode.py --measure), for issue #25's table of measured steps beside the
# planner's. Usage: bash lab/device/round52.sh
source lab/device/common.sh round52
stamp "setup done"
timeout 200 python3 bench/tp_decode.py --measure --tps 1,2 --out "$OUT/tp_decode_h200x2_round52.json" \
  > "$OUT/tp_decode.log" 2>&1; stamp "tp decode exit $?"
tail -n 12 "$OUT/tp_decode.log"; cat "$OUT/timeline.txt"
