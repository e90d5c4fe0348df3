#!/usr/bin/env bash
# Device round 37 (1 GPU, about 5 min): FP8 projections at 17-64 rows now run W8A8 in the 8-bit-weight GEMM's kernel
# (engine.quant.FP8_W8A8_ROWS, launch shape kernels/w8a16_mma.w8a8_config, from round 36b's search). (1) the GPU
# tests of the quantized paths; (2) the engine's FP8 decode at batch 64 and 4096-token prefill against bf16
# (bench/quant_speed.py: issue #25's targets), with the previous FP8 paths beside (--fp8-w8a8 0 0 turns it off);
# (3) the FP8/INT8 GEMM tables as the engine now serves them and (4) FP8 serving iterations of the 8B, for the
# profile of the GPU that comes. Usage: bash lab/device/round37.sh
source lab/device/common.sh round37
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then GPU=H200; TAG=h200; else GPU=H100-SXM; TAG=h100; fi
timeout 150 python3 -m pytest -q tests/test_gpu_tp_quant.py -k "w8a8 or fp8_linear or 8bit_weight or logits or split_k" \
  > "$OUT/gpu_tests.log" 2>&1; stamp "gpu tests exit $?"; tail -n 3 "$OUT/gpu_tests.log"
timeout 200 python3 bench/quant_speed.py --skip-gemms --fp8-w8a8 0 0 --out "$OUT/quant_speed_${TAG}_round37.json" \
  > "$OUT/quant_speed.log" 2>&1; stamp "quant_speed exit $?"; tail -n 12 "$OUT/quant_speed.log"; pack
timeout 200 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts gemm \
  --out "$OUT/${TAG}_fp8_int8_gemms_v6.json.gz" > "$OUT/gemms.log" 2>&1; stamp "gemm tables ($GPU) exit $?"; pack
timeout 150 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts iterations --quantization fp8 \
  --models llama-3.1-8b --out "$OUT/${TAG}_fp8_iterations_8b_v2.json.gz" > "$OUT/iterations_fp8.log" 2>&1
stamp "fp8 iterations exit $?"
tail -n 2 "$OUT/gemms.log" "$OUT/iterations_fp8.log"; cat "$OUT/timeline.txt"
