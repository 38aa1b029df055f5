#!/usr/bin/env bash
# Runs the chunked Wkv7 prefill (wkv7_chunk_prep_f32_n* then wkv7_chunk_scan_f32_n*, kernels/wkv7_chunked.cu) on the
# CPU under emu.h (wkv7_chunked_test.cpp) against the recurrence in float64, and wkv7_chunk_prep_keys_f32_n* (the
# prompt op's prep) against the plain prep on the composed ops' inputs, bit for bit (~1.5 min alone: argument keys).
# Logic and indexing only: no GPU memory model, no speed; cp.async is a plain copy below sm_80, which the emulator is.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt wkv7_chunked
build_and_run wkv7_chunked_test "$@" # 32 or 16: only the scan in blocks of that many state rows; keys: only the keys prep
