#!/usr/bin/env bash
# Device round 42 (1 GPU, about 6 min): FP8 projections at 8-16 rows now run W8A8 too (engine.quant.FP8_W8A8_ROWS
# (8, 64); kernels/w8a16_mma.w8a8_config's 16-row shape from round 40's search). (1) the GPU tests of the quantized
# paths; (2) the launch rule at 8 and 16 rows on shapes it was not read from (Qwen-7B-shaped, 70B TP=2 shard) beside
# the streaming path (bench/quant_tune.py --no-search); (3) the engine's FP8 decode at batches 8-64 and prefill
# against bf16, with the previous range (17, 64) beside; (4) the FP8/INT8 GEMM tables and (5) the 8B's FP8 serving
# iterations as the engine now serves them, for the H200 profile. Usage: bash lab/device/round42.sh
source lab/device/common.sh round42
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then GPU=H200; TAG=h200; else GPU=H100-SXM; TAG=h100; fi
timeout 150 python3 -m pytest -q tests/test_gpu_tp_quant.py -k "w8a8 or fp8_linear or 8bit_weight or logits or split_k" \
  > "$OUT/gpu_tests.log" 2>&1; stamp "gpu tests exit $?"; tail -n 3 "$OUT/gpu_tests.log"
timeout 120 python3 bench/quant_tune.py --formats fp8 w8a8 --no-search --ms 8 16 --shapes 8b qwen7b 70b-tp2 \
  --out "$OUT/quant_tune_${TAG}_round42.json" > "$OUT/quant_tune.log" 2>&1; stamp "quant_tune exit $?"; pack
timeout 240 python3 bench/quant_speed.py --skip-gemms --fp8-w8a8 17 64 --decode-batches 8 16 32 64 \
  --out "$OUT/quant_speed_${TAG}_round42.json" > "$OUT/quant_speed.log" 2>&1; stamp "quant_speed exit $?"
tail -n 12 "$OUT/quant_speed.log"; pack
timeout 200 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts gemm \
  --out "$OUT/${TAG}_fp8_int8_gemms_v7.json.gz" > "$OUT/gemms.log" 2>&1; stamp "gemm tables ($GPU) exit $?"; pack
timeout 150 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts iterations --quantization fp8 \
  --models llama-3.1-8b --out "$OUT/${TAG}_fp8_iterations_8b_v3.json.gz" > "$OUT/iterations_fp8.log" 2>&1
stamp "fp8 iterations exit $?"
grep -v "^\s*$" "$OUT/quant_tune.log" | tail -n 12
tail -n 2 "$OUT/gemms.log" "$OUT/iterations_fp8.log"; cat "$OUT/timeline.txt"
