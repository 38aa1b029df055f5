#!/usr/bin/env bash
# Builds and runs probe.cu on the GPU machine (nvcc and cuBLASLt from the CUDA toolkit).
set -eu
cd "$(dirname "$0")"
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
$NVCC -O2 -std=c++17 -arch=sm_90 -o /tmp/cublaslt_probe probe.cu -lcublasLt
/tmp/cublaslt_probe
