source lab/device/common.sh round36b
timeout 400 python3 bench/quant_tune.py --formats w8a8 --ms 32 64 128 --shapes 8b qwen7b 70b-tp2 \
  --out "$OUT/quant_tune_round36b.json" > "$OUT/quant_tune.log" 2>&1
stamp "quant_tune exit $?"
grep -v "^\s*$" "$OUT/quant_tune.log" | tail -n 60
