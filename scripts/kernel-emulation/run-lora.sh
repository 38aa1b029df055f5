#!/usr/bin/env bash
# Runs kernels/lora.cu on the CPU under emu.h (lora_test.cpp): kernel indexing and the split-K protocol without a GPU.
# The .cu file is used as it is after three textual edits: `extern "C"` dropped, the f16 conversion stubbed (bf16 only
# here) and common.cuh's 16-byte PTX load replaced by a memcpy.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt lora
build_and_run lora_test
