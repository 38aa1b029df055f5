"""Writes kernels adapted for emu.h into a work folder (used by every run-*.sh through common.sh).

usage: adapt.py KERNELS WORK NAME...   ->  WORK/common.cuh and WORK/NAME.inc for each kernels/NAME.cu

The .cu files are used as they are after textual edits: `extern "C"` dropped, the dynamic shared array bound to the
emulator's buffer, the f16 conversion stubbed (f16 weights are not emulated) and common.cuh's 16-byte PTX load
replaced by a memcpy. Everything else (cp.async, PDL, ...) takes its pre-sm_80 branch: the emulator defines no
__CUDA_ARCH__.
"""
import os
import re
import sys

kernels, work, names = sys.argv[1], sys.argv[2], sys.argv[3:]
c = open(f"{kernels}/common.cuh", encoding="utf-8").read().replace("#pragma once", "")
c = c.replace('    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));', "    f = 0; (void)h; // f16 weights are not emulated")
i = c.index("__device__ __forceinline__ uint4 load_stream(const void* p)")
j = c.index("return v;\n}", i) + len("return v;\n}")
c = c[:i] + "__device__ __forceinline__ uint4 load_stream(const void* p) { uint4 v; memcpy(&v, p, 16); return v; }" + c[j:]
open(f"{work}/common.cuh", "w", encoding="utf-8").write(c)
# The other headers (shared by two kernel files, e.g. lora_down.cuh) as they are, without #pragma once: a test may
# include two kernel files in two namespaces, and each needs its own copy.
for header in sorted(os.listdir(kernels)):
    if header.endswith(".cuh") and header != "common.cuh":
        h = open(f"{kernels}/{header}", encoding="utf-8").read().replace("#pragma once", "")
        open(f"{work}/{header}", "w", encoding="utf-8").write(h)
for name in names:
    s = open(f"{kernels}/{name}.cu", encoding="utf-8").read().replace('extern "C" ', "")
    s = re.sub(r"extern __shared__ float ([a-z_]*)\[\];", r"float* \1 = emu_dynamic_shared;", s)
    open(f"{work}/{name}.inc", "w", encoding="utf-8").write(s)
