#!/usr/bin/env bash
# Runs the fused decode kernels gate_up_swiglu_* (kernels/matmul.cu) and rwkv7_keys_vres_f32 (kernels/rwkv7.cu) on the
# CPU under emu.h (decode_fusion_test.cpp) against the kernels they replace (gemv_group_* + swiglu_f32;
# rwkv7_keys_f32 + rwkv7_value_residual_f32), bit for bit, with the host's launch geometry. Logic and indexing only:
# no GPU memory model, no speed. The .cu files are used as they are after textual edits: `extern "C"` dropped, the
# dynamic shared array bound to the emulator's buffer, the f16 conversion stubbed (bf16 and f32 weights here) and
# common.cuh's 16-byte PTX load replaced by a memcpy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kernels="$here/../../kernels"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$kernels" "$work" <<'PY'
import re, sys
kernels, work = sys.argv[1], sys.argv[2]
c = open(f"{kernels}/common.cuh").read().replace("#pragma once", "")
c = c.replace('    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));', "    f = 0; (void)h;")
i = c.index("__device__ __forceinline__ uint4 load_stream(const void* p)")
j = c.index("return v;\n}", i) + len("return v;\n}")
c = c[:i] + "__device__ __forceinline__ uint4 load_stream(const void* p) { uint4 v; memcpy(&v, p, 16); return v; }" + c[j:]
open(f"{work}/common.cuh", "w").write(c)
for f in ["matmul", "elementwise", "rwkv7"]:
    s = open(f"{kernels}/{f}.cu").read().replace('extern "C" ', "")
    s = re.sub(r"extern __shared__ float ([a-z]*)\[\];", r"float* \1 = emu_dynamic_shared;", s)
    open(f"{work}/{f}.inc", "w").write(s)
PY
cp "$here/emu.h" "$here/decode_fusion_test.cpp" "$work/"
g++ -std=c++20 -O1 -pthread -w -I"$work" "$work/decode_fusion_test.cpp" -o "$work/decode_fusion_test"
"$work/decode_fusion_test"
