#!/usr/bin/env bash
# Runs the register-tiled prefill kernel wkv7_tile_f32_* (kernels/rwkv7.cu) on the CPU under emu.h
# (wkv7_tile_test.cpp) against T calls of wkv7_decode_f32, bit for bit. Logic and indexing only: no GPU memory model,
# no speed. The .cu file is used as it is after textual edits: `extern "C"` dropped and the dynamic shared array bound
# to the emulator's buffer (cp.async falls back to a plain copy below sm_80, which the emulator is).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kernels="$here/../../kernels"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sed -e 's/^#pragma once//' -e 's/    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));/    f = 0; (void)h;/' "$kernels/common.cuh" > "$work/common.cuh"
sed -e 's/extern __shared__ float \([a-z]*\)\[\];/float* \1 = emu_dynamic_shared;/' -e 's/extern "C" //' "$kernels/rwkv7.cu" > "$work/rwkv7.inc"
cp "$here/emu.h" "$here/wkv7_tile_test.cpp" "$work/"
g++ -std=c++20 -O1 -pthread -w -I"$work" "$work/wkv7_tile_test.cpp" -o "$work/wkv7_tile_test"
"$work/wkv7_tile_test"
