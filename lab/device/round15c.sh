#!/usr/bin/env bash
# Device round 15c (1x H100, about 5 min): grid 6's single-GPU runs (amendment 2, docs/validation_protocol.md):
# round 15b, asked for 2x H100, ran on 2x H200, so its files are not grid 6's. Replica 0's list, then replica 1's,
# on the one GPU. No calibration in this round. Score only if machine.txt lists an H100.
# Usage on the device: bash lab/device/round15c.sh   (results: $OUT/round15c.tgz)
source lab/device/common.sh round15c
G=lab/validation/heldout/grid6.yaml; H=$OUT/heldout
for r in 0 1; do
  mkdir -p "$H/q$r"
  CUDA_VISIBLE_DEVICES=0 timeout 260 python3 -m lab.heldout serve --grid $G --list q --replica $r --out "$H/q$r" \
    --deadline-s 230 > "$H/q$r/lane.log" 2>&1; stamp "q$r done ($?)"
done
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
