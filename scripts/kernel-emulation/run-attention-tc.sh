#!/usr/bin/env bash
# Runs the tensor-core prefill attention (attention_prefill_tc_*, kernels/attention.cu) on the CPU under emu.h
# (attention_tc_test.cpp) against float64 attention, with the host's launch geometry. The mma.sync helper
# (mma_bf16_16816) is replaced by emu.h's warp-level emulation of the PTX fragment layout; the bf16 rounding
# (pack_bf16x2) runs its integer fallback (nearest even), as the device's cvt.rn.bf16x2.f32 rounds. Logic and
# indexing only: no GPU memory model, no speed. Other edits as run.sh: `extern "C"` dropped, the dynamic shared
# array bound to the emulator's buffer. About 5 minutes on 2 cores; `run-attention-tc.sh quick` runs two shapes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kernels="${RADLADS_KERNEL_DIR:-$here/../../kernels}" # another folder: e.g. a deliberately broken copy
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
s = open(f"{kernels}/attention.cu").read().replace('extern "C" ', "")
s = re.sub(r"extern __shared__ float ([a-z]*)\[\];", r"float* \1 = emu_dynamic_shared;", s)
head = "__device__ __forceinline__ void mma_bf16_16816(float* d, const u32* a, u32 b0, u32 b1)\n{"
i = s.index(head)
j = s.index("\n}\n", i) + 3
s = s[:i] + head + " emu_mma_bf16_16816(d, a, b0, b1); }\n" + s[j:]
open(f"{work}/attention.inc", "w").write(s)
PY
cp "$here/emu.h" "$here/attention_tc_test.cpp" "$work/"
g++ -std=c++20 -O1 -pthread -w -I"$work" "$work/attention_tc_test.cpp" -o "$work/attention_tc_test"
"$work/attention_tc_test" "$@" # "quick": a few shapes
