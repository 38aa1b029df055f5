#!/usr/bin/env bash
# Runs gemv_group_lora_down_bf16_* (kernels/matmul.cu: q/k/v GEMV and LoraSet's down projections in one launch) on the
# CPU under emu.h (group_lora_test.cpp) against the two kernels it replaces (gemv_group_bf16_* and lora.cu's
# lora_down_bf16), bit for bit, with the host's launch geometry (CudaOps.AddRmsNormMatMulSharedLoraSet), blocks in
# launch order and shuffled. Logic and indexing only: no GPU memory model, no speed.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt matmul norms lora
build_and_run group_lora_test
