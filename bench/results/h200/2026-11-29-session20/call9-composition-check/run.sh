#!/usr/bin/env bash
# Session 20, call 9: after the composition moved into FusedOpCompositions (CUDA's fallback calls it): the prompt op's
# conformance on every GPU backend, the flagged-chunk test, and the CUDA model class.
set -u
O=/tmp/s20v9; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 150 ./Radlads.Tests -parallel none -showLiveOutput -class- "*IlgpuCpu*" -method "*Rwkv7RopeKeysWkv7*" -method "*PromptKeysPrep*" -method "Radlads.Tests.Models.CudaModelTests.*" > $O/tests.log 2>&1
echo "tests: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8
tar czf $OUT/s20v9.tgz -C /tmp s20v9
