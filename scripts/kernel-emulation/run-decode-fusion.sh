#!/usr/bin/env bash
# Runs the fused decode kernels gate_up_swiglu_* (kernels/matmul.cu), rwkv7_keys_vres_f32 and rwkv7_rope_keys_rows_f32
# (kernels/rwkv7.cu), rwkv7_rope_keys_wkv7_rows_f32 (decode_batch.cu; against rwkv7_rope_keys_rows_f32 then the gated
# wkv7 decode kernel) and the scale + gate epilogue of wkv7_decode_f32 / wkv7_decode_rows_f32 (rwkv7.cu, decode_batch.cu)
# on the CPU under emu.h (decode_fusion_test.cpp) against the kernels they replace (gemv_group_* + swiglu_f32;
# rwkv7_keys_f32 + rwkv7_value_residual_f32; rope_expand_rows_f32 + rwkv7_keys_vres_f32; the same wkv7 kernel without a
# gate + scale_multiply_f32), bit for bit, with the host's launch geometry. Logic and indexing only:
# no GPU memory model, no speed. The .cu files are used as they are after textual edits: `extern "C"` dropped, the
# dynamic shared array bound to the emulator's buffer, the f16 conversion stubbed (bf16 and f32 weights here) and
# common.cuh's 16-byte PTX load replaced by a memcpy.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt matmul elementwise rwkv7 decode_batch
build_and_run decode_fusion_test
