#!/usr/bin/env bash
# Runs the register-tiled prefill kernel wkv7_tile_f32_* (kernels/rwkv7.cu) on the CPU under emu.h
# (wkv7_tile_test.cpp) against T calls of wkv7_decode_f32, bit for bit. Logic and indexing only: no GPU memory model,
# no speed. The .cu file is used as it is after textual edits: `extern "C"` dropped and the dynamic shared array bound
# to the emulator's buffer (cp.async falls back to a plain copy below sm_80, which the emulator is).
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt rwkv7
build_and_run wkv7_tile_test
