#!/usr/bin/env bash
# Device round 49 (2x H200, about 8 min): (1) INT8 at 17-64 rows through the 16-row launch with its row tiles side by
# side (w8a16_mma.Config.m_first): bit-equality test, then bench/quant_tune.py --no-search at 32 and 64 rows on the
# 8B's projections (which a rule would be read from) and the Qwen-7B and 70B-TP2 ones (a check); (2) held-out grid 20
# (docs/validation_protocol.md, section "Grid 20"; written before its runs): lists a (GPU 0) and b (GPU 1) side by
# side, each run replica 0 then 1 (one process each, at most 130 s), none started after 340 s; then the FP8 TP=2 run
# on both GPUs, replica 0 then 1 (at most 150 s each), none started after 470 s. Usage: bash lab/device/round49.sh
source lab/device/common.sh round49
stamp "setup done"
grep -q -e "GPU-ce955cfe" -e "GPU-51e4dd93" -e "GPU-65942243" -e "GPU-6672d77c" -e "GPU-4f39397b" -e "GPU-fa2badef" \
  -e "GPU-0e08bf45" "$OUT/machine.txt" && stamp "a GPU of rounds 42-48"
CUDA_VISIBLE_DEVICES=0 timeout 60 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "row_tiles_launched_first" \
  > "$OUT/m_first_test.log" 2>&1; stamp "m_first test exit $?"
CUDA_VISIBLE_DEVICES=0 timeout 60 python3 bench/quant_tune.py --formats int8 --no-search --ms 32 64 \
  --shapes 8b qwen7b 70b-tp2 --out "$OUT/quant_tune_m16.json" > "$OUT/quant_tune.log" 2>&1; stamp "quant_tune exit $?"
G=lab/validation/heldout/grid20.yaml
if grep -q H200 "$OUT/machine.txt" && [ "$(grep -c '^GPU' "$OUT/machine.txt")" -ge 2 ]; then
  serve_replicas $G a 0 340 130 g20-qwen7b-sharegpt-0.95 g20-qwen7b-mns128-azurecode-0.5 g20-fp8-8b-mns48-azurecode-0.95 &
  serve_replicas $G b 1 340 130 g20-int8-8b-mns128-azureconv-0.5 g20-bf16-8b-mns24-sharegpt-1.2 g20-bf16-1b-azurecode-0.95 &
  wait; pack
  serve_replicas $G tp 0,1 470 150 g20-tp2-8b-fp8-sharegpt-0.5; pack
else
  stamp "not 2x H200: grid 20 not served"
fi
tail -n 3 "$OUT/m_first_test.log"; grep -v "^\s*$" "$OUT/quant_tune.log" | tail -n 30
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 14; cat "$OUT/timeline.txt"
