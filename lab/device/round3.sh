#!/usr/bin/env bash
# Device round 3 (4 GPUs, one call of < 10 min): the held-out grid (lab/validation/heldout/grid.yaml, protocol in
# docs/validation_protocol.md) -- TP=2 runs on GPUs 0-1 (each run in its own process, two replicas in turn),
# the FP8/INT8 and bf16 held-out runs on GPUs 2 and 3 (replica 0 and 1 of the same list, side by side); then the
# quantization benchmark timed in CUDA graphs (engine on GPU 0, GEMMs on GPU 1); then TP=4 decode on all four.
# Usage on the device: bash lab/device/round3.sh   (results: $OUT/round3.tgz)
source lab/device/common.sh round3
nproc >> "$OUT/machine.txt"; grep -m1 "model name" /proc/cpuinfo >> "$OUT/machine.txt"
stamp "setup done"
H=$OUT/heldout; mkdir -p "$H/tp" "$H/q0" "$H/q1"
( for id in tp2-8b-0.95 tp2-8b-0.5 tp2-8b-1.2; do
    for r in 0 1; do
      if [ "$(el)" -lt 330 ]; then
        CUDA_VISIBLE_DEVICES=0,1 timeout 100 python3 -m lab.heldout serve --list tp --only $id --replica $r \
          --out "$H/tp" >> "$H/tp/lane.log" 2>&1 || echo "$id r$r exit $?" >> "$H/tp/lane.log"
      else echo "$id r$r: not started (deadline)" >> "$H/tp/lane.log"; fi
    done
  done
  stamp "tp lane done"
  if [ "$(el)" -lt 420 ]; then
    (CUDA_VISIBLE_DEVICES=0 timeout 120 python3 bench/quant_speed.py --skip-gemms --out "$OUT/quant_engine.json" \
       > "$OUT/quant_engine.log" 2>&1) &
    (CUDA_VISIBLE_DEVICES=1 timeout 120 python3 bench/quant_speed.py --skip-engine --out "$OUT/quant_gemms.json" \
       > "$OUT/quant_gemms.log" 2>&1) &
    wait
  fi
  stamp "quant_speed done" ) &
(CUDA_VISIBLE_DEVICES=2 timeout 470 python3 -m lab.heldout serve --list q --replica 0 --out "$H/q0" --deadline-s 370 \
   > "$H/q0/lane.log" 2>&1; stamp "q0 lane done") &
(CUDA_VISIBLE_DEVICES=3 timeout 470 python3 -m lab.heldout serve --list q --replica 1 --out "$H/q1" --deadline-s 370 \
   > "$H/q1/lane.log" 2>&1; stamp "q1 lane done") &
wait
pack
if [ "$(el)" -lt 480 ]; then
  timeout 70 python3 bench/tp_decode.py --measure --tps 4 --out "$OUT/tp_decode_4.json" > "$OUT/tp_decode_4.log" 2>&1
  stamp "tp4 decode done"
fi
tail -n 4 "$H"/*/lane.log; tail -n 6 "$OUT"/quant_*.log; tail -n 5 "$OUT/tp_decode_4.log" 2>/dev/null
cat "$OUT/timeline.txt"
