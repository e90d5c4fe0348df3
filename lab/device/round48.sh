#!/usr/bin/env bash
# Device round 48 (1x H200, about 4 min): (1) the Qwen2.5-7B shape's bf16 GEMM tables and attention layouts, which
# the H200 profile lacks (grid 18's miss; docs/validation_protocol.md, "Grid 18 result"), to be merged with
# `planner profile-add` before grid 20 is registered; (2) INT8 weights converted by float32 bit arithmetic
# (kernels/w8a16_mma.INT8_MAGIC): its exactness test, then both conversions at the shipped launch rule against cuBLAS
# bf16 at 16-64 rows on three shape sets (bench/quant_tune.py --formats int8 int8m --no-search).
# Usage: bash lab/device/round48.sh
source lab/device/common.sh round48
stamp "setup done"
GPU=$(grep -q H200 "$OUT/machine.txt" && echo H200 || echo H100-SXM)
timeout 200 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts attention,gemm_bf16 \
  --shape-models qwen2.5-7b --out "$OUT/extra_qwen7b_$GPU.json.gz" > "$OUT/qwen7b.log" 2>&1; stamp "qwen7b tables exit $?"
timeout 120 python3 -m pytest -q -x tests/test_gpu_tp_quant.py -k "int8_weights_converted or w8a16_tensor_core" \
  > "$OUT/int8m_test.log" 2>&1; stamp "int8m tests exit $?"
timeout 170 python3 bench/quant_tune.py --formats int8 int8m --no-search --ms 16 32 64 --shapes 8b qwen7b 70b-tp2 \
  --out "$OUT/quant_tune_int8m.json" > "$OUT/quant_tune.log" 2>&1; stamp "quant_tune exit $?"
tail -n 4 "$OUT/qwen7b.log" "$OUT/int8m_test.log"; grep -v "^\s*$" "$OUT/quant_tune.log" | tail -n 40; cat "$OUT/timeline.txt"
