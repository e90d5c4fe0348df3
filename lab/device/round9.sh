#!/usr/bin/env bash
# Device round 9 (1x H100): the paged-decode kernel reading an FP8 KV cache (bit-level e4m3 conversion), every
# test of tests/test_kernels.py. Usage on the device: bash lab/device/round9.sh   (results: $OUT/round9.tgz)
bash lab/device/fp8kv.sh round9
