#!/usr/bin/env bash
# Builds and runs persistent_layers.cu on the GPU machine (nvcc from the CUDA toolkit): ./run.sh [layers] [steps]
set -eu
cd "$(dirname "$0")"
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
$NVCC -O3 -std=c++17 -arch=sm_90a -o /tmp/persistent_layers persistent_layers.cu
/tmp/persistent_layers "${1:-24}" "${2:-50}"
