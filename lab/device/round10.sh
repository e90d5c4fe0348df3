#!/usr/bin/env bash
# Device round 10 (1x H100): round 9 after the FP8 conversion became the hardware one (sm_89+); the paged-decode
# and FP8 tests. Usage on the device: bash lab/device/round10.sh   (results: $OUT/round10.tgz)
bash lab/device/fp8kv.sh round10 "paged or fp8"
