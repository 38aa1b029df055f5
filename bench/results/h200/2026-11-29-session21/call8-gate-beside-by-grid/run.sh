#!/usr/bin/env bash
# Session 21, call 8 (the final code): the gate's LoRA beside the scan only where the scan's blocks outnumber the SMs;
# the side-stream tests and the CUDA model class; prefill on/off (RADLADS_CONCURRENT_LORA), interleaved.
set -u
O=/tmp/s21v8; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 120 ./Radlads.Tests -parallel none -showLiveOutput -class "*CudaPrefillBf16Tests" -class "Radlads.Tests.Models.CudaModelTests" > $O/tests.log 2>&1
echo "tests: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8
PF="--arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048"
for round in 1 2 3; do
  for c in 1 0; do
    RADLADS_CONCURRENT_LORA=$c timeout 100 ./radlads bench-decode $PF > $O/pf-$c-r$round.log 2>&1
    echo "concurrent=$c r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$c-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
grep -a "GEMM rate" $O/pf-1-r1.log
tar czf $OUT/s21v8.tgz -C /tmp s21v8
