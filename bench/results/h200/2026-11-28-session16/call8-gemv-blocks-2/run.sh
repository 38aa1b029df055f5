#!/usr/bin/env bash
# Session 16, call 8: GemvBlocksPerSm 2 by default (b9e1912): CUDA op conformance (every GEMV level, the persistent and
# streamed MLP now at other levels), model/graph/device-sampling classes; bench against RADLADS_GEMV_BLOCKS_PER_SM=8.
set -u
O=/tmp/s16v8; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit b9e1912" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 150 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" -class "*CudaGraphTests" -class "*CudaModelTests" -class "*DeviceSamplingTests" > $O/tests.log 2>&1
echo "tests rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests.log | head
BD="./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8"
timeout 100 $BD > $O/bd-new.log 2>&1; echo "new (2): $(grep -a '^| 0.5b\|^| 1.5b\|^| 7b' $O/bd-new.log | cut -d'|' -f2,3,8,13 | tr '\n' ' ')"
RADLADS_GEMV_BLOCKS_PER_SM=8 timeout 100 $BD > $O/bd-old.log 2>&1; echo "old (8): $(grep -a '^| 0.5b\|^| 1.5b\|^| 7b' $O/bd-old.log | cut -d'|' -f2,3,8,13 | tr '\n' ' ')"
tar czf $OUT/s16v8.tgz -C /tmp s16v8
