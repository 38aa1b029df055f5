#!/usr/bin/env bash
# Session 19, call 5: cuBLASLt tuning (RADLADS_CUBLASLT_TUNE=1, default) against the heuristic's first choice (0):
# GEMM, recurrence, prefill-bf16 and model classes; prefill 7B/1.5B/0.5B RAD-RWKV7 and 7B Qwen2, two interleaved rounds.
set -u
O=/tmp/s19v5; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 280 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaGemmTests" -class "Radlads.Tests.Ops.CudaRecurrenceTests" -class "Radlads.Tests.Ops.CudaPrefillBf16Tests" -class "Radlads.Tests.Models.CudaModelTests" > $O/tests.log 2>&1
echo "classes: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8
for round in 1 2; do
  if [ $round = 1 ]; then L="1 0"; else L="0 1"; fi
  for tune in $L; do
    RADLADS_CUBLASLT_TUNE=$tune timeout 150 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048 > $O/pf-rwkv7-$tune-r$round.log 2>&1
    RADLADS_CUBLASLT_TUNE=$tune timeout 150 ./radlads bench-decode --arch qwen2 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b --prefill-bench 2048 > $O/pf-qwen2-$tune-r$round.log 2>&1
    echo "tune $tune r$round: $(grep -ahE '^\| (7b|1.5b|0.5b) \| (rwkv7|qwen2) \| [0-9]+ \| cuBLAS' $O/pf-*-$tune-r$round.log | cut -d'|' -f2,3,6,10 | tr '\n' ' ')"
    grep -a "GEMM rate" $O/pf-rwkv7-$tune-r$round.log
  done
done
tar czf $OUT/s19v5.tgz -C /tmp s19v5
