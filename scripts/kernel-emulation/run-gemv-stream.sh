#!/usr/bin/env bash
# Runs gemv_stream_bf16 (kernels/matmul.cu) on the CPU under emu.h (gemv_stream_test.cpp) against a float64 GEMV, with
# the host's geometry (CudaOps.GemvStreamGeometry) for a small made-up GPU, twice per case (the sums must not change).
# Logic and indexing only: cp.async is an ordinary copy here and its waits are no-ops. About a minute on 2 cores.
set -euo pipefail
. "$(dirname "$0")/common.sh"
adapt matmul
build_and_run gemv_stream_test
