#!/usr/bin/env bash
# Runs rms_norm_bf16_f32 / add_rms_norm_bf16_f32 (kernels/norms.cu) on the CPU under emu.h (norms_test.cpp) against
# rms_norm_f32 / add_rms_norm_f32 (fp32 h and y, bit for bit) and f32_to_bf16_pairs / f32_to_bf16 (kernels/matmul.cu,
# the rounding the cuBLASLt GEMM would have done: the bf16 copy, bit for bit), with the host's launch geometry
# (CudaOps.NormGeometry, CudaOps.ToBf16). Logic and indexing only: no GPU memory model, no speed. The .cu files are used
# as they are after textual edits: `extern "C"` dropped, the f16 conversion stubbed (bf16 and f32 weights here) and
# common.cuh's 16-byte PTX load replaced by a memcpy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kernels="$here/../../kernels"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$kernels" "$work" <<'PY'
import sys
kernels, work = sys.argv[1], sys.argv[2]
c = open(f"{kernels}/common.cuh", encoding="utf-8").read().replace("#pragma once", "")
c = c.replace('    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));', "    f = 0; (void)h;")
i = c.index("__device__ __forceinline__ uint4 load_stream(const void* p)")
j = c.index("return v;\n}", i) + len("return v;\n}")
c = c[:i] + "__device__ __forceinline__ uint4 load_stream(const void* p) { uint4 v; memcpy(&v, p, 16); return v; }" + c[j:]
open(f"{work}/common.cuh", "w", encoding="utf-8").write(c)
for f in ["norms", "matmul"]:
    s = open(f"{kernels}/{f}.cu", encoding="utf-8").read().replace('extern "C" ', "")
    open(f"{work}/{f}.inc", "w", encoding="utf-8").write(s)
PY
cp "$here/emu.h" "$here/norms_test.cpp" "$work/"
g++ -std=c++20 -O1 -pthread -w -I"$work" "$work/norms_test.cpp" -o "$work/norms_test"
"$work/norms_test"
