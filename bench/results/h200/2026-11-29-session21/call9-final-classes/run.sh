#!/usr/bin/env bash
# Session 21, call 9 (the final code): the CUDA prefill-bf16 (second stream), model and graph classes.
set -u
O=/tmp/s21v9; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 150 ./Radlads.Tests -parallel none -showLiveOutput -class "*CudaPrefillBf16Tests" -class "Radlads.Tests.Models.CudaModelTests" -class "Radlads.Tests.Models.CudaGraphTests" > $O/tests.log 2>&1
echo "tests: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8
tar czf $OUT/s21v9.tgz -C /tmp s21v9
