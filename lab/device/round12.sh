#!/usr/bin/env bash
# Device round 12 (1x H100): round 10 after the FP8 cache write moved into the fused RoPE + cache kernel; the
# paged-decode, RoPE + cache-write and FP8 tests. Usage on the device: bash lab/device/round12.sh (results:
# $OUT/round12.tgz)
bash lab/device/fp8kv.sh round12 "paged or fp8 or rope"
