#!/usr/bin/env bash
# Session 16, call 10: the ILGPU-CUDA GEMV conformance and graph tests with RADLADS_ILGPU_GEMV_GROUPS_PER_SM=2.
set -u
O=/tmp/s16v10; mkdir -p $O
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
RADLADS_ILGPU_GEMV_GROUPS_PER_SM=2 timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.IlgpuCudaOpConformanceTests" -class "*IlgpuGraphTests" -method "*MatMul*" -method "*GateUp*" -method "*AddRmsNorm*" -method "*Recorded*" > $O/tests.log 2>&1
echo "rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests.log | head
tar czf $OUT/s16v10.tgz -C /tmp s16v10
