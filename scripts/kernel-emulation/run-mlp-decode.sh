#!/usr/bin/env bash
# Runs the persistent MLP kernels mlp_decode_bf16_* and mlp_stream_bf16_* (kernels/matmul.cu) on the CPU under emu.h (mlp_decode_test.cpp)
# against the kernels it replaces (add_rms_norm_f32 / rms_norm_f32, gate_up_swiglu_bf16_*, gemv_bf16_vec*), bit for
# bit, with the host's launch geometry, as one block (the emulator runs blocks one at a time, and a grid barrier needs
# them all resident). Logic and indexing only: no GPU memory model, no speed, no multi-block barrier.
# --sm90: the sm_90 form only (~9 min on a 2-core machine, with its late-landing copies).
set -euo pipefail
. "$(dirname "$0")/common.sh"
if [ "${1:-}" != "--sm90" ]; then
    adapt matmul norms
    build_and_run mlp_decode_test
fi
# mlp_stream's sm_90 form: the producer warp, two consumer groups, the mbarrier protocol (emulated: a deadlock fails).
echo "--- sm_90 branches (adapt --sm90)"
adapt --sm90 matmul norms
EMU_CXXFLAGS=-DEMU_SM90 build_and_run mlp_decode_test
