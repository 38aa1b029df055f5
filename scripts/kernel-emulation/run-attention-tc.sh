#!/usr/bin/env bash
# Runs the tensor-core prefill attention (attention_prefill_tc_*, kernels/attention.cu) on the CPU under emu.h
# (attention_tc_test.cpp) against float64 attention, with the host's launch geometry. The mma.sync helper
# (mma_bf16_16816) is replaced by emu.h's warp-level emulation of the PTX fragment layout; the bf16 rounding
# (pack_bf16x2) runs its integer fallback (nearest even), as the device's cvt.rn.bf16x2.f32 rounds. Logic and
# indexing only: no GPU memory model, no speed. Other edits as run.sh: `extern "C"` dropped, the dynamic shared
# array bound to the emulator's buffer. About 5 minutes on 2 cores; `run-attention-tc.sh quick` runs two shapes.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt attention
# The mma.sync helper becomes emu.h's warp-level emulation of the PTX fragment layout.
python3 - "$work/attention.inc" <<'PY'
import sys
path = sys.argv[1]
s = open(path, encoding="utf-8").read()
head = "__device__ __forceinline__ void mma_bf16_16816(float* d, const u32* a, u32 b0, u32 b1)\n{"
i = s.index(head)
j = s.index("\n}\n", i) + 3
s = s[:i] + head + " emu_mma_bf16_16816(d, a, b0, b1); }\n" + s[j:]
open(path, "w", encoding="utf-8").write(s)
PY
build_and_run attention_tc_test "$@" # "quick": a few shapes
