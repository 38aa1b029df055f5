#!/usr/bin/env bash
# Runs the backward kernels (kernels/backward*.cu) on the CPU under a small CUDA emulation (emu.h: a std::thread per
# CUDA thread, one block at a time, __syncthreads as a block barrier, warp shuffles through a per-warp barrier) and
# checks them against central finite differences of float64 forwards (backward_test.cpp); first the fused forward
# kernels (rope_expand_f32, rope_expand_rows_f32, expand_kv_f32, scale_multiply_f32) against the unfused kernels they
# replace, bit for bit (fused_test.cpp). For kernel logic on a
# machine without a GPU (g++ 12+, C++20); it says nothing about speed, and the GPU's memory model is not emulated
# (a race that happens not to show here can still show on the device). The .cu files are used as they are, after
# two textual edits: `extern "C"` dropped and the dynamic shared array bound to the emulator's buffer.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt backward backward_matmul backward_rwkv6 backward_rwkv7 backward_training attention decode_batch elementwise
build_and_run fused_test
build_and_run backward_test
