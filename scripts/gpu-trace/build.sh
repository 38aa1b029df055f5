#!/bin/bash
# Builds libradlads_trace.so next to this script (on the GPU machine: the CUDA toolkit has CUPTI under extras/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CUDA=${CUDA_HOME:-/usr/local/cuda}
INC=$(dirname "$(ls "$CUDA"/extras/CUPTI/include/cupti.h "$CUDA"/include/cupti.h "$CUDA"/targets/*/include/cupti.h 2>/dev/null | head -1)")
LIB=$(dirname "$(ls "$CUDA"/extras/CUPTI/lib64/libcupti.so "$CUDA"/lib64/libcupti.so "$CUDA"/targets/*/lib/libcupti.so 2>/dev/null | head -1)")
gcc -O2 -shared -fPIC -o libradlads_trace.so trace.c -I"$INC" -I"$CUDA/include" -L"$LIB" -lcupti -Wl,-rpath,"$LIB"
echo "built $(pwd)/libradlads_trace.so (CUPTI from $LIB)"
