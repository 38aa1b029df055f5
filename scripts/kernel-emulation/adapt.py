"""Writes kernels adapted for emu.h into a work folder (used by every run-*.sh through common.sh).

usage: adapt.py KERNELS WORK NAME...   ->  WORK/common.cuh and WORK/NAME.inc for each kernels/NAME.cu

The .cu files are used as they are after textual edits: `extern "C"` dropped, the dynamic shared array bound to the
emulator's buffer, the f16 conversion stubbed (f16 weights are not emulated) and common.cuh's 16-byte PTX load
replaced by a memcpy. Everything else (cp.async, PDL, ...) takes its pre-sm_80 branch: the emulator defines no
__CUDA_ARCH__. With --sm90 (first or anywhere among the arguments) it defines __CUDA_ARCH__ 900 instead and routes
each of common.cuh's PTX helpers to emu.h's emulation (mbarriers, bulk copies, named barriers) or a plain load/copy,
so the sm_90 branches of the kernel files named run (only files without PTX of their own outside common.cuh).
"""
import os
import re
import sys

args = [a for a in sys.argv[1:] if a != "--sm90"]
sm90 = len(args) < len(sys.argv) - 1
kernels, work, names = args[0], args[1], args[2:]
c = open(f"{kernels}/common.cuh", encoding="utf-8").read().replace("#pragma once", "")
c = c.replace('    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));', "    f = 0; (void)h; // f16 weights are not emulated")
i = c.index("__device__ __forceinline__ uint4 load_stream(const void* p)")
j = c.index("return v;\n}", i) + len("return v;\n}")
c = c[:i] + "__device__ __forceinline__ uint4 load_stream(const void* p) { uint4 v; memcpy(&v, p, 16); return v; }" + c[j:]


def replace_function(text, signature, body):
    """The definition that starts with `signature` (up to its closing brace at column 0) becomes signature + body."""
    i = text.index(signature)
    j = text.index("\n}\n", i) + 3
    return text[:i] + signature + "\n" + body + "\n" + text[j:]


if sm90:
    # --sm90: the kernels' sm_90 branches (warp-specialised producers, mbarriers, bulk copies, named barriers) run, with
    # every PTX helper of common.cuh routed to emu.h's emulation (or to a plain load/copy); see emu.h.
    c = "#define __CUDA_ARCH__ 900\n" + c
    for signature, body in [
        ("__device__ __forceinline__ void pdl_wait()", "{\n}"),
        ("__device__ __forceinline__ void pdl_trigger()", "{\n}"),
        ("__device__ __forceinline__ float4 load_written4(const float* p)", "{\n    return *(const float4*)p;\n}"),
        ("__device__ __forceinline__ int load_acquire(const int* p)", "{\n    return __atomic_load_n(p, __ATOMIC_ACQUIRE);\n}"),
        ("__device__ __forceinline__ void mbar_init(unsigned long long* bar, unsigned count)", "{\n    emu_mbar_init(bar, count);\n}"),
        ("__device__ __forceinline__ void mbar_init_fence()", "{\n}"),
        ("__device__ __forceinline__ void mbar_arrive(unsigned long long* bar)", "{\n    emu_mbar_arrive(bar, 0);\n}"),
        ("__device__ __forceinline__ void mbar_arrive_expect(unsigned long long* bar, unsigned bytes)", "{\n    emu_mbar_arrive(bar, bytes);\n}"),
        ("__device__ __forceinline__ void mbar_wait(unsigned long long* bar, unsigned parity)", "{\n    emu_mbar_wait(bar, parity);\n}"),
        ("__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, unsigned long long* bar)",
         "{\n    emu_bulk_copy(dst, src, bytes, bar);\n}"),
        ("__device__ __forceinline__ void copy_async_f32(float* dst, const float* src, bool in)", "{\n    *dst = in ? *src : 0.f;\n}"),
        ("__device__ __forceinline__ void copy_async_commit()", "{\n}"),
        ("__device__ __forceinline__ void copy_async_wait_all()", "{\n}"),
        ("__device__ __forceinline__ void copy_async_16(void* dst, const void* src)", "{\n    memcpy(dst, src, 16);\n}"),
        ("__device__ __forceinline__ void copy_async_wait_group()", "{\n}"),
    ]:
        c = replace_function(c, signature, body)
    c = c.replace('asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");', "emu_named_barrier(id, threads);")
    if "asm" in re.sub(r"//.*", "", c):
        sys.exit("adapt.py --sm90: common.cuh has PTX this emulation does not route (add it above)")
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
