#!/usr/bin/env bash
# Runs kernels/lora.cu on the CPU under emu.h (lora_test.cpp): kernel indexing and the split-K protocol without a GPU.
# The .cu file is used as it is after three textual edits: `extern "C"` dropped, the f16 conversion stubbed (bf16 only
# here) and common.cuh's 16-byte PTX load replaced by a memcpy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kernels="$here/../../kernels"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$kernels" "$work" <<'PY'
import sys
kernels, work = sys.argv[1], sys.argv[2]
c = open(f"{kernels}/common.cuh").read().replace("#pragma once", "")
c = c.replace('    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));', "    f = 0; (void)h;")
i = c.index("__device__ __forceinline__ uint4 load_stream(const void* p)")
j = c.index("return v;\n}", i) + len("return v;\n}")
c = c[:i] + "__device__ __forceinline__ uint4 load_stream(const void* p) { uint4 v; memcpy(&v, p, 16); return v; }" + c[j:]
open(f"{work}/common.cuh", "w").write(c)
open(f"{work}/lora.inc", "w").write(open(f"{kernels}/lora.cu").read().replace('extern "C" ', ""))
PY
cp "$here/emu.h" "$here/lora_test.cpp" "$work/"
g++ -std=c++20 -O1 -pthread -w -I"$work" "$work/lora_test.cpp" -o "$work/lora_test"
"$work/lora_test"
