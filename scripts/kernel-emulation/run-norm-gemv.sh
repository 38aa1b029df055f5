#!/usr/bin/env bash
# Runs the fused residual norm + decode GEMV kernels norm_gemv_group_* and norm_gate_up_swiglu_* (kernels/matmul.cu)
# on the CPU under emu.h (norm_gemv_test.cpp) against the kernels they replace (add_rms_norm_f32 / rms_norm_f32 of
# kernels/norms.cu, then gemv_group_* or gate_up_swiglu_*), bit for bit, with the host's launch geometry, and with the
# blocks in launch order and in shuffled orders (the last block to count writes h and normed). Logic and indexing
# only: no GPU memory model, no speed.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt matmul norms
build_and_run norm_gemv_test
