#!/usr/bin/env bash
# Runs rms_norm_bf16_f32 / add_rms_norm_bf16_f32 (kernels/norms.cu) on the CPU under emu.h (norms_test.cpp) against
# rms_norm_f32 / add_rms_norm_f32 (fp32 h and y, bit for bit) and f32_to_bf16_pairs / f32_to_bf16 (kernels/matmul.cu,
# the rounding the cuBLASLt GEMM would have done: the bf16 copy, bit for bit), with the host's launch geometry
# (CudaOps.NormGeometry, CudaOps.ToBf16). Logic and indexing only: no GPU memory model, no speed. The .cu files are used
# as they are after textual edits: `extern "C"` dropped, the f16 conversion stubbed (bf16 and f32 weights here) and
# common.cuh's 16-byte PTX load replaced by a memcpy.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt norms matmul
build_and_run norms_test
